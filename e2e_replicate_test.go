package main

import (
	"bytes"
	"io"
	"os/exec"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/static"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/google/go-containerregistry/pkg/v1/validate"
)

var alice = remote.WithAuth(&authn.Basic{Username: "alice", Password: "alice-secret"})

// replicated is what seedReplication pushed: the tags to compare, and the
// referrers of team/app:v1's index.
type replicated struct {
	tags      []string // repo:tag
	index     v1.Hash
	referrer  v1.Hash
	cosignTag string // team/app's sha256-<hex>.sig
}

// seedReplication pushes, as alice, an index of two platforms with an
// OCI 1.1 referrer (a signature whose subject is the index) and a cosign
// signature tag; one platform's image again as team/base:v1, sharing
// every blob; and a plain image as team/app:v2.
func seedReplication(t *testing.T, s *e2eServer) replicated {
	t.Helper()
	var adds []mutate.IndexAddendum
	var first v1.Image
	for _, arch := range []string{"amd64", "arm64"} {
		img, err := random.Image(64<<10, 2)
		if err != nil {
			t.Fatal(err)
		}
		cf, _ := img.ConfigFile()
		cf.OS, cf.Architecture = "linux", arch
		if img, err = mutate.ConfigFile(img, cf); err != nil {
			t.Fatal(err)
		}
		if first == nil {
			first = img
		}
		adds = append(adds, mutate.IndexAddendum{Add: img, Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: "linux", Architecture: arch}}})
	}
	idx := mutate.AppendManifests(mutate.IndexMediaType(empty.Index, types.OCIImageIndex), adds...)
	if err := remote.WriteIndex(s.ref(t, "team/app:v1"), idx, alice); err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(s.ref(t, "team/base:v1"), first, alice); err != nil {
		t.Fatal(err)
	}
	plain, _ := random.Image(32<<10, 1)
	if err := remote.Write(s.ref(t, "team/app:v2"), plain, alice); err != nil {
		t.Fatal(err)
	}
	d, _ := idx.Digest()
	mt, _ := idx.MediaType()
	sz, _ := idx.Size()
	sig := signature(t, "subject of "+d.String())
	sig = mutate.Subject(sig, v1.Descriptor{MediaType: mt, Digest: d, Size: sz}).(v1.Image)
	sd, _ := sig.Digest()
	if err := remote.Write(s.ref(t, "team/app@"+sd.String()), sig, alice); err != nil {
		t.Fatal(err)
	}
	cosign := signature(t, "cosign of "+d.String())
	tag := "sha256-" + d.Hex + ".sig"
	if err := remote.Write(s.ref(t, "team/app:"+tag), cosign, alice); err != nil {
		t.Fatal(err)
	}
	return replicated{tags: []string{"team/app:v1", "team/app:v2", "team/base:v1"}, index: d, referrer: sd, cosignTag: tag}
}

// signature is a small cosign-like artifact carrying payload.
func signature(t *testing.T, payload string) v1.Image {
	t.Helper()
	img := mutate.MediaType(empty.Image, types.OCIManifestSchema1)
	img = mutate.ConfigMediaType(img, "application/vnd.dev.cosign.artifact.sig.v1+json")
	img, err := mutate.Append(img, mutate.Addendum{Layer: static.NewLayer([]byte(payload), "application/vnd.dev.cosign.simplesigning.v1+json")})
	if err != nil {
		t.Fatal(err)
	}
	return img
}

// sameContent checks that dst holds what src does, byte for byte: every
// tag's manifest, every child and blob (validated by digest), the
// index's referrer and the cosign tag.
func sameContent(t *testing.T, want replicated, src, dst func(string) name.Reference, srcOpt, dstOpt remote.Option) {
	t.Helper()
	refs := append([]string{}, want.tags...)
	refs = append(refs, "team/app@"+want.referrer.String(), "team/app:"+want.cosignTag)
	for _, r := range refs {
		s, err := remote.Get(src(r), srcOpt)
		if err != nil {
			t.Fatalf("source %s: %v", r, err)
		}
		d, err := remote.Get(dst(r), dstOpt)
		if err != nil {
			t.Fatalf("target %s: %v", dst(r), err)
		}
		if d.Digest != s.Digest || !bytes.Equal(d.Manifest, s.Manifest) {
			t.Errorf("target %s = %s, want %s byte for byte", dst(r), d.Digest, s.Digest)
		}
		if d.MediaType.IsIndex() {
			idx, _ := d.ImageIndex()
			if err := validate.Index(idx); err != nil {
				t.Errorf("validate.Index(%s) = %v", dst(r), err)
			}
			continue
		}
		img, _ := d.Image()
		layers, _ := img.Layers()
		for _, l := range layers {
			rc, err := l.Compressed() // verified against its digest on read
			if err == nil {
				_, err = io.Copy(io.Discard, rc)
				rc.Close()
			}
			if err != nil {
				t.Errorf("target %s blob: %v", dst(r), err)
			}
		}
	}
	subject := dst("team/app@" + want.index.String()).(name.Digest)
	idx, err := remote.Referrers(subject, dstOpt)
	if err != nil {
		t.Fatalf("remote.Referrers(%s) = %v", subject, err)
	}
	im, _ := idx.IndexManifest()
	if len(im.Manifests) != 1 || im.Manifests[0].Digest != want.referrer {
		t.Errorf("referrers of %s on the target = %v, want [%s]", subject, im.Manifests, want.referrer)
	}
}

// replicateCmd runs `registry replicate` against s's configuration with
// stdin as the remote's password, returning stdout and stderr.
func replicateCmd(t *testing.T, s *e2eServer, stdin string, args ...string) (string, string, error) {
	t.Helper()
	cmd := exec.Command(registryBin, append([]string{"replicate", "--config", s.config}, args...)...)
	cmd.Stdin = strings.NewReader(stdin)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	return out.String(), errb.String(), err
}

func refIn(t *testing.T, host, prefix string) func(string) name.Reference {
	return func(r string) name.Reference {
		ref, err := name.ParseReference(host+"/"+prefix+r, name.Insecure)
		if err != nil {
			t.Fatal(err)
		}
		return ref
	}
}

// TestE2EReplicateNora pushes from one registry with auth to another
// with a robot token, re-runs (nothing moves), fails clearly with a
// pull-only token, and pulls everything into a third registry whose
// server is stopped.
func TestE2EReplicateNora(t *testing.T) {
	a, b := startAuthServer(t), startAuthServer(t)
	want := seedReplication(t, a)
	token := func(name, perms string) string {
		out, err := exec.Command(registryBin, "token", "create", "--config", b.config, "--name", name, "--permissions", perms).Output()
		if err != nil {
			t.Fatalf("registry token create %s = %v", name, err)
		}
		return strings.TrimSpace(string(out))
	}
	pusher, reader := token("push-bot", "push:**,pull:**"), token("read-bot", "pull:**")

	out, errs, err := replicateCmd(t, a, pusher+"\n", "--to", "http://"+b.host(), "--username", "bot", "--password-stdin", "team/**")
	if err != nil {
		t.Fatalf("registry replicate --to = %v\n%s\n%s", err, out, errs)
	}
	if !strings.Contains(out, "3 copied, 0 up to date, 0 failed") {
		t.Errorf("registry replicate --to summary:\n%s", out)
	}
	for _, line := range strings.Split(out, "\n") {
		// team/base:v1 shares every blob with team/app:v1: mounted, only its manifest is sent.
		if f := strings.Fields(line); len(f) == 5 && f[0] == "team/base" && (f[3] != "copied" || len(f[4]) > 4) {
			t.Errorf("team/base:v1 summary = %q, want copied with only its manifest's bytes", line)
		}
	}
	sameContent(t, want, refIn(t, a.host(), ""), refIn(t, b.host(), ""), alice, alice)

	out, errs, err = replicateCmd(t, a, pusher, "--to", "http://"+b.host(), "--username", "bot", "--password-stdin", "team/**")
	if err != nil || !strings.Contains(out, "0 copied, 3 up to date, 0 failed; 0 bytes sent") {
		t.Errorf("registry replicate --to again = %v, want nothing copied:\n%s\n%s", err, out, errs)
	}

	out, errs, err = replicateCmd(t, a, reader, "--to", "http://"+b.host(), "--username", "bot", "--password-stdin", "--to-prefix", "denied", "--tags", "v1", "team/app")
	if err == nil || !strings.Contains(errs, "1 of 1 items failed") || !strings.Contains(errs, "team/app:v1: ") {
		t.Errorf("registry replicate with a pull-only token = %v, want it to fail naming team/app:v1:\n%s\n%s", err, out, errs)
	}

	// A glob lists the source's catalog with the robot's token: it names
	// what the robot may pull.
	c := startServer(t)
	c.stop()
	out, errs, err = replicateCmd(t, c, reader, "--from", "http://"+b.host()+"/team/**", "--username", "bot", "--password-stdin", "--to-prefix", "edge")
	if err != nil || !strings.Contains(errs, "(offline)") {
		t.Fatalf("registry replicate --from team/** into a stopped registry = %v\n%s\n%s", err, out, errs)
	}
	c.start()
	sameContent(t, want, refIn(t, a.host(), ""), refIn(t, c.host(), "edge/"), alice, remote.WithAuth(authn.Anonymous))
}
