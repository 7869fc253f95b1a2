package cmd

import (
	"bytes"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"unsafe"

	"golang.org/x/sys/unix"
)

// exemapProbe is in the binary's data, a private writable mapping of the
// executable that releaseExecutable must leave alone: dropped, it would
// read again as the file holds it.
var exemapProbe = []int{1}

// mappedRSS is how many KiB of the mappings of /proc/self/smaps that
// keep are resident.
func mappedRSS(t *testing.T, keep func(start uint64, dev, ino, path string) bool) (kb int64) {
	t.Helper()
	b, err := os.ReadFile("/proc/self/smaps")
	if err != nil {
		t.Fatal(err)
	}
	in := false
	for _, l := range strings.Split(string(b), "\n") {
		fs := strings.Fields(l)
		switch {
		case len(fs) == 0:
		case !strings.HasSuffix(fs[0], ":"):
			lo, _, _ := strings.Cut(fs[0], "-")
			start, err := strconv.ParseUint(lo, 16, 64)
			in = err == nil && len(fs) >= 6 && keep(start, fs[3], fs[4], strings.Join(fs[5:], " "))
		case fs[0] == "Rss:" && in:
			n, _ := strconv.ParseInt(fs[1], 10, 64)
			kb += n
		}
	}
	return kb
}

// TestReleaseExecutable: the executable's code and constants leave the
// resident set, and the process runs on with its data as it was.
func TestReleaseExecutable(t *testing.T) {
	exe := executableFile()
	if exe == nil {
		t.Fatal("the executable's file is unknown")
	}
	exemapProbe[0] = 2
	ofExe := func(_ uint64, dev, ino, path string) bool { return exe.is(dev, ino, path) }
	before := mappedRSS(t, ofExe)
	releaseExecutable()
	after := mappedRSS(t, ofExe)
	t.Logf("the executable's mappings: %d KiB resident before, %d KiB after", before, after)
	if before-after < 1024 || after > before/2 {
		t.Errorf("the executable's mappings: %d KiB resident before, %d KiB after: want at least 1 MiB and half given back", before, after)
	}
	if exemapProbe[0] != 2 {
		t.Fatalf("a variable in the binary's data reads %d after the release, want 2", exemapProbe[0])
	}
	if _, err := LoadFile("../nora.toml.example"); err != nil {
		t.Fatalf("loading the example configuration after the release: %v", err)
	}
}

// TestReleaseUnchangedKeepsChangedPages: a read-only private mapping with
// a page changed before it was made read-only, as a position-independent
// build's relocated constants are (RELRO), is left alone; an unchanged
// one of the same file is dropped and reads the same after.
func TestReleaseUnchangedKeepsChangedPages(t *testing.T) {
	page := os.Getpagesize()
	name := filepath.Join(t.TempDir(), "mapped")
	content := bytes.Repeat([]byte("f"), 4*page)
	if err := os.WriteFile(name, content, 0o600); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(name)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	mmap := func(prot int) []byte {
		b, err := unix.Mmap(int(f.Fd()), 0, len(content), prot, unix.MAP_PRIVATE)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { unix.Munmap(b) })
		return b
	}
	relocated := mmap(unix.PROT_READ | unix.PROT_WRITE)
	copy(relocated, "relocated")
	if err := unix.Mprotect(relocated, unix.PROT_READ); err != nil {
		t.Fatal(err)
	}
	plain := mmap(unix.PROT_READ)
	sum := 0
	for i := 0; i < len(plain); i += page {
		sum += int(plain[i]) // faults every page in
	}
	if sum != 4*'f' {
		t.Fatalf("the mapping reads %d, want %d", sum, 4*'f')
	}
	rss := func(b []byte) int64 {
		start := uint64(uintptr(unsafe.Pointer(&b[0])))
		return mappedRSS(t, func(at uint64, _, _, _ string) bool { return at == start })
	}
	plainBefore, relocatedBefore := rss(plain), rss(relocated)
	if plainBefore == 0 || relocatedBefore == 0 {
		t.Fatalf("resident before: %d KiB unchanged, %d KiB changed; want both", plainBefore, relocatedBefore)
	}
	releaseUnchanged("/proc/self/smaps", func(_, _, path string) bool { return path == name })
	if got := rss(plain); got != 0 {
		t.Errorf("the unchanged mapping: %d KiB resident after the release, want 0", got)
	}
	if got := rss(relocated); got != relocatedBefore {
		t.Errorf("the mapping with a changed page: %d KiB resident after the release, want %d, as before", got, relocatedBefore)
	}
	if !bytes.HasPrefix(relocated, []byte("relocated")) {
		t.Fatalf("the changed page reads %q after the release, want what was written", relocated[:9])
	}
	if !bytes.Equal(plain, content) {
		t.Fatal("the unchanged mapping reads otherwise after the release")
	}
}

// TestUnchangedMappings reads a smaps file: only the private read-only
// mappings of the matched file with pages resident and none changed are
// kept; an emulator's smaps, with nothing resident, yields nothing.
func TestUnchangedMappings(t *testing.T) {
	smaps := filepath.Join(t.TempDir(), "smaps")
	mapping := func(addr, perms, dev, ino, path string, rss, anon int) string {
		return addr + " " + perms + " 00000000 " + dev + " " + ino + "                 " + path + "\n" +
			"Size:               64 kB\n" +
			"Rss:                " + strconv.Itoa(rss) + " kB\n" +
			"Anonymous:          " + strconv.Itoa(anon) + " kB\n" +
			"VmFlags: rd mr mw me\n"
	}
	const exe = "/opt/my registry/registry"
	text := mapping("00400000-00d22000", "r-xp", "fe:00", "42", exe, 7880, 0) +
		mapping("00d22000-016db000", "r--p", "fe:00", "42", exe, 0, 0) +
		mapping("016db000-01755000", "r--p", "fe:00", "42", exe, 2172, 1836) +
		mapping("01755000-017b1000", "rw-p", "fe:00", "42", exe, 424, 96) +
		mapping("02000000-02010000", "r--s", "fe:00", "42", exe, 64, 0) +
		mapping("7f000000-7f100000", "r--p", "fe:00", "43", "/data/metadata.db", 1024, 0) +
		mapping("7f200000-7f210000", "r--p", "00:2a", "99", exe, 16, 0) // an overlay's dev and inode, the same path
	if err := os.WriteFile(smaps, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	f := &mappedFile{dev: "fe:00", ino: "42", path: exe}
	got := unchangedMappings(smaps, f.is)
	want := []addrRange{{0x400000, 0xd22000 - 0x400000}, {0x7f200000, 0x10000}}
	if len(got) != len(want) || got[0] != want[0] || got[1] != want[1] {
		t.Fatalf("unchangedMappings = %x, want %x", got, want)
	}
	emulated := strings.ReplaceAll(text, "Rss:                7880 kB", "Rss:                0 kB")
	emulated = strings.ReplaceAll(emulated, "Rss:                16 kB", "Rss:                0 kB")
	if err := os.WriteFile(smaps, []byte(emulated), 0o600); err != nil {
		t.Fatal(err)
	}
	if got := unchangedMappings(smaps, f.is); len(got) != 0 {
		t.Fatalf("with nothing resident, unchangedMappings = %x, want none", got)
	}
}
