package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
)

// TestE2EArmv7 runs the 32-bit build that `make cross` ships for a
// Raspberry Pi (GOARCH=arm, GOARM=7) under qemu-user: it takes a pushed
// image and a second tag, serves them back byte for byte, keeps them
// across a restart, and stops cleanly. Every other test runs the amd64
// build; a 32-bit machine differs in what compiles (statfs's block size)
// and in how 64-bit values line up in memory.
func TestE2EArmv7(t *testing.T) {
	qemu := needTool(t, "qemu-arm", "apt-get install qemu-user")
	if buildErr != nil {
		t.Fatalf("building the registry binary: %v", buildErr)
	}
	bin := filepath.Join(t.TempDir(), "registry-armv7")
	build := exec.Command("go", "build", "-trimpath", "-o", bin, ".")
	build.Env = append(os.Environ(), "GOOS=linux", "GOARCH=arm", "GOARM=7", "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build for armv7 = %v\n%s", err, out)
	}
	s := startServerExe(t, t.TempDir(), "", "", []string{qemu, bin})
	img, err := random.Image(1<<20, 3)
	if err != nil {
		t.Fatal(err)
	}
	ref := s.ref(t, "pi/app:v1")
	if err := remote.Write(ref, img); err != nil {
		t.Fatalf("remote.Write(%s) = %v", ref, err)
	}
	if err := remote.Tag(s.ref(t, "pi/app:latest").(name.Tag), img); err != nil {
		t.Fatalf("remote.Tag = %v", err)
	}
	s.restart()
	for _, tag := range []string{"v1", "latest"} {
		pullWhole(t, s.ref(t, "pi/app:"+tag), img)
	}
	tags, err := remote.List(s.ref(t, "pi/app:v1").Context())
	if err != nil || len(tags) != 2 {
		t.Errorf("remote.List = %v, %v; want [latest v1]", tags, err)
	}
}
