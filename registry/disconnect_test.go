package registry

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"
)

// sendTruncated writes a request that announces more body than it sends,
// then hangs up, as a client that dies mid-upload.
func sendTruncated(t *testing.T, base, method, path string, announced int, body string) {
	t.Helper()
	conn, err := net.Dial("tcp", strings.TrimPrefix(base, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprintf(conn, "%s %s HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n%s", method, path, announced, body)
	time.Sleep(50 * time.Millisecond)
	conn.Close()
}

func TestClientDisconnectMidUpload(t *testing.T) {
	srv, _ := newTestServer(t)
	base := srv.URL
	data := strings.Repeat("x", 64<<10)
	d := digest.FromString(data)

	// A monolithic upload cut short leaves nothing visible.
	sendTruncated(t, base, "POST", "/v2/cut/mono/blobs/uploads/?digest="+string(d), len(data), data[:1000])
	call{method: "HEAD", path: "/v2/cut/mono/blobs/" + string(d), wantStatus: 404}.run(t, base)

	// A chunk cut short keeps what arrived; the client resumes from there.
	loc := call{method: "POST", path: "/v2/cut/chunk/blobs/uploads/", wantStatus: 202}.run(t, base).Header.Get("Location")
	sendTruncated(t, base, "PATCH", loc, len(data), data[:3000])
	deadline := time.Now().Add(5 * time.Second)
	var rng string
	for time.Now().Before(deadline) {
		rng = call{method: "GET", path: loc, wantStatus: 204}.run(t, base).Header.Get("Range")
		if rng == "0-2999" {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if rng != "0-2999" {
		t.Fatalf("Range after a cut chunk = %q, want 0-2999", rng)
	}
	call{method: "PATCH", path: loc, header: map[string]string{"Content-Range": fmt.Sprintf("3000-%d", len(data)-1)}, body: data[3000:], wantStatus: 202}.run(t, base)
	call{method: "PUT", path: loc + "?digest=" + string(d), wantStatus: 201}.run(t, base)
	call{method: "GET", path: "/v2/cut/chunk/blobs/" + string(d), wantStatus: 200, wantBody: data}.run(t, base)
}

// TestMalformedChunkedManifest: a manifest body whose chunk framing is
// broken did not arrive, which is the client's fault: 400
// MANIFEST_INVALID, not a server error.
func TestMalformedChunkedManifest(t *testing.T) {
	srv, _ := newTestServer(t)
	conn, err := net.Dial("tcp", strings.TrimPrefix(srv.URL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	fmt.Fprint(conn, "PUT /v2/broken/app/manifests/latest HTTP/1.1\r\nHost: x\r\n"+
		"Content-Type: application/vnd.oci.image.manifest.v1+json\r\nTransfer-Encoding: chunked\r\n\r\n"+
		"5\r\n{\"sch\r\nzz\r\n")
	conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusBadRequest || !strings.Contains(string(body), "MANIFEST_INVALID") {
		t.Errorf("PUT with broken chunk framing = %s %s, want 400 MANIFEST_INVALID", resp.Status, body)
	}
}
