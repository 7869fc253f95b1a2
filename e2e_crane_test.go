package main

// End-to-end tests with crane, go-containerregistry's command line
// client. The library it is built on is tested in e2e_ggcr_test.go; this
// drives the binary people script with, under a private HOME and
// DOCKER_CONFIG so the host's credentials neither help nor hurt.

import (
	"archive/tar"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

const craneInstallHint = "go install github.com/google/go-containerregistry/cmd/crane@v0.22.1 (or run .ci/run)"

// craneClient returns a runner for crane over plain HTTP, and a scratch
// directory.
func craneClient(t *testing.T) (dir string, run func(args ...string) string) {
	t.Helper()
	bin := needTool(t, "crane", craneInstallHint)
	dir = t.TempDir()
	env := []string{"HOME=" + filepath.Join(dir, "home"), "DOCKER_CONFIG=" + filepath.Join(dir, "home", "docker")}
	return dir, func(args ...string) string {
		return runTool(t, env, bin, append([]string{"--insecure"}, args...)...)
	}
}

// TestE2EClientCrane pushes an image layout with crane and reads, tags,
// copies, lists and deletes it.
func TestE2EClientCrane(t *testing.T) {
	s := startServer(t)
	dir, crane := craneClient(t)
	host := s.host()
	img := ociImage(t)
	want := digestOf(t, img).String()
	src := filepath.Join(dir, "layout")
	writeLayout(t, src, img, "v1")
	ref := host + "/crane/app:v1"

	if got := strings.TrimSpace(crane("push", src, ref)); got != host+"/crane/app@"+want {
		t.Errorf("crane push %s %s = %q, want %s/crane/app@%s", src, ref, got, host, want)
	}
	if got := strings.TrimSpace(crane("digest", ref)); got != want {
		t.Errorf("crane digest %s = %s, want %s", ref, got, want)
	}
	rawManifest, err := img.RawManifest()
	if err != nil {
		t.Fatal(err)
	}
	if got := crane("manifest", ref); got != string(rawManifest) {
		t.Errorf("crane manifest %s = %s, want the pushed bytes %s", ref, got, rawManifest)
	}

	crane("tag", ref, "v2")
	if got := strings.Fields(crane("ls", host+"/crane/app")); fmt.Sprint(got) != "[v1 v2]" {
		t.Errorf("crane ls %s/crane/app = %v, want [v1 v2]", host, got)
	}
	crane("copy", ref, host+"/crane/copy:v1")
	if d, err := remote.Head(s.ref(t, "crane/copy:v1")); err != nil || d.Digest.String() != want {
		t.Errorf("after crane copy, remote.Head(crane/copy:v1) = %v, %v, want digest %s", d, err, want)
	}
	if got := strings.Fields(crane("catalog", host)); fmt.Sprint(got) != "[crane/app crane/copy]" {
		t.Errorf("crane catalog %s = %v, want [crane/app crane/copy]", host, got)
	}

	layers, err := img.Layers()
	if err != nil {
		t.Fatal(err)
	}
	layer := host + "/crane/app@" + digestOf(t, layers[1]).String()
	if got, want := crane("blob", layer), compressedBytes(t, layers[1]); !bytes.Equal([]byte(got), want) {
		t.Errorf("crane blob %s: %d bytes, sha256 %s, want %d bytes, %s", layer, len(got), sha256of([]byte(got)), len(want), sha256of(want))
	}

	crane("delete", host+"/crane/app@"+want)
	for _, r := range []string{"crane/app:v1", "crane/app:v2", "crane/app@" + want} {
		if _, err := remote.Head(s.ref(t, r)); err == nil {
			t.Errorf("after crane delete, remote.Head(%s) = nil error, want not found", r)
		}
	}
	if got := strings.Fields(crane("ls", host+"/crane/app")); len(got) != 0 {
		t.Errorf("after crane delete, crane ls %s/crane/app = %v, want no tags", host, got)
	}
	pullWhole(t, s.ref(t, "crane/copy:v1"), nil) // after crane delete of crane/app
}

// TestE2EClientCraneAppend appends a layer of files to a pushed image
// and finds the files in the new image's filesystem.
func TestE2EClientCraneAppend(t *testing.T) {
	s := startServer(t)
	dir, crane := craneClient(t)
	host := s.host()
	base := ociImage(t)
	if err := remote.Write(s.ref(t, "crane/base:v1"), base); err != nil {
		t.Fatalf("remote.Write(crane/base:v1) = %v", err)
	}
	files := map[string]string{"etc/nora-e2e.conf": "appended = true\n", "usr/share/nora/README": "from crane append\n"}
	layerBytes := tarOf(t, files)
	layerTar := filepath.Join(dir, "layer.tar")
	if err := os.WriteFile(layerTar, layerBytes, 0o644); err != nil {
		t.Fatal(err)
	}
	ref := host + "/crane/app:appended"

	out := strings.TrimSpace(crane("append", "-b", host+"/crane/base:v1", "-f", layerTar, "-t", ref))
	if d, err := remote.Head(s.ref(t, "crane/app:appended")); err != nil || out != host+"/crane/app@"+d.Digest.String() {
		t.Fatalf("crane append = %q; remote.Head(crane/app:appended) = %v, %v, want the digest crane printed", out, d, err)
	}

	var m v1.Manifest
	raw := crane("manifest", ref)
	if err := json.Unmarshal([]byte(raw), &m); err != nil {
		t.Fatalf("crane manifest %s: %v\n%s", ref, err, raw)
	}
	baseManifest, err := base.Manifest()
	if err != nil {
		t.Fatal(err)
	}
	if len(m.Layers) != 3 || m.Layers[0].Digest != baseManifest.Layers[0].Digest || m.Layers[1].Digest != baseManifest.Layers[1].Digest ||
		m.Layers[2].MediaType != types.OCILayer {
		t.Errorf("crane manifest %s = %s, want the base's 2 layers and one %s", ref, raw, types.OCILayer)
	}

	var cf v1.ConfigFile
	raw = crane("config", ref)
	if err := json.Unmarshal([]byte(raw), &cf); err != nil {
		t.Fatalf("crane config %s: %v\n%s", ref, err, raw)
	}
	// The layer's diff id is the digest of the tar crane was given.
	if ids := cf.RootFS.DiffIDs; len(ids) != 3 || ids[2].String() != sha256of(layerBytes) {
		t.Errorf("crane config %s: diff_ids = %v, want 3 ending in %s", ref, ids, sha256of(layerBytes))
	}

	export := filepath.Join(dir, "fs.tar")
	crane("export", ref, export)
	got := tarFiles(t, export)
	for name, want := range files {
		if got[name] != want {
			t.Errorf("crane export %s: %s = %q, want %q", ref, name, got[name], want)
		}
	}
}

func compressedBytes(t *testing.T, l v1.Layer) []byte {
	t.Helper()
	rc, err := l.Compressed()
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	b, err := io.ReadAll(rc)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// tarOf is an uncompressed tar of files (name → content), in name order.
func tarOf(t *testing.T, files map[string]string) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	names := make([]string, 0, len(files))
	for name := range files {
		names = append(names, name)
	}
	slices.Sort(names)
	for _, name := range names {
		hdr := &tar.Header{Name: name, Mode: 0o644, Size: int64(len(files[name])), Typeflag: tar.TypeReg}
		if err := tw.WriteHeader(hdr); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write([]byte(files[name])); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// tarFiles reads the regular files of the tar at path (name → content).
func tarFiles(t *testing.T, path string) map[string]string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	files := map[string]string{}
	tr := tar.NewReader(f)
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return files
		}
		if err != nil {
			t.Fatalf("reading %s: %v", path, err)
		}
		if hdr.Typeflag != tar.TypeReg {
			continue
		}
		b, err := io.ReadAll(tr)
		if err != nil {
			t.Fatalf("reading %s from %s: %v", hdr.Name, path, err)
		}
		files[hdr.Name] = string(b)
	}
}
