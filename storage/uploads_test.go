package storage

import (
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"

	"github.com/opencontainers/go-digest"
)

func TestUploadChunks(t *testing.T) {
	for _, alg := range []digest.Algorithm{digest.SHA256, digest.SHA512} {
		t.Run(string(alg), func(t *testing.T) {
			ctx := t.Context()
			s := newStore(t)
			data := []byte(strings.Repeat("chunked-upload-", 1000))
			d := alg.FromBytes(data)
			up, err := s.StartUpload(ctx, "app", "") // hashed as sha256; a sha512 commit re-reads
			if err != nil {
				t.Fatal(err)
			}
			for off := 0; off < len(data); off += 4000 {
				end := min(off+4000, len(data))
				if up, err = s.AppendUpload(ctx, "app", up.ID, int64(off), bytes.NewReader(data[off:end])); err != nil || up.Offset != int64(end) {
					t.Fatalf("AppendUpload(%d) = %+v, %v; want offset %d", off, up, err, end)
				}
			}
			_, err = s.AppendUpload(ctx, "app", up.ID, 10, strings.NewReader("x"))
			wantErr(t, "AppendUpload(wrong offset)", err, ErrUploadOffset)
			if _, err := s.StatBlob(ctx, "app", d); !errors.Is(err, ErrBlobNotFound) {
				t.Fatalf("StatBlob before commit = %v, want ErrBlobNotFound", err)
			}
			info, err := s.CommitUpload(ctx, "app", up.ID, d)
			if err != nil || info.Size != int64(len(data)) {
				t.Fatalf("CommitUpload = %+v, %v", info, err)
			}
			if got := readBlob(t, s, "app", d); !bytes.Equal(got, data) {
				t.Fatal("blob bytes differ from the upload")
			}
			_, err = s.GetUpload(ctx, "app", up.ID)
			wantErr(t, "GetUpload(committed)", err, ErrUploadNotFound)
			if keys := driverKeys(t, s, "uploads"); len(keys) != 0 {
				t.Errorf("upload files left after commit: %v", keys)
			}
		})
	}
}

func TestUploadDigestMismatch(t *testing.T) {
	ctx := t.Context()
	s := newStore(t)
	up, _ := s.StartUpload(ctx, "app", "")
	s.AppendUpload(ctx, "app", up.ID, 0, strings.NewReader("actual"))
	wrong := digest.FromString("claimed")
	_, err := s.CommitUpload(ctx, "app", up.ID, wrong)
	wantErr(t, "CommitUpload(wrong digest)", err, ErrDigestMismatch)
	_, err = s.StatBlob(ctx, "app", wrong)
	wantErr(t, "StatBlob(wrong)", err, ErrBlobNotFound)
	_, err = s.GetUpload(ctx, "app", up.ID)
	wantErr(t, "GetUpload(discarded)", err, ErrUploadNotFound)
	if keys := driverKeys(t, s, ""); len(keys) != 1 { // meta.db only
		t.Errorf("driver keys after a mismatch = %v, want only meta.db", keys)
	}
}

func TestUploadSurvivesRestart(t *testing.T) {
	root := t.TempDir()
	data := []byte(strings.Repeat("resume", 5000))
	s := openAt(t, root)
	up, err := s.StartUpload(t.Context(), "app", "")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.AppendUpload(t.Context(), "app", up.ID, 0, bytes.NewReader(data[:7000])); err != nil {
		t.Fatal(err)
	}
	s.Close()

	s = openAt(t, root)
	defer s.Close()
	got, err := s.GetUpload(t.Context(), "app", up.ID)
	if err != nil || got.Offset != 7000 {
		t.Fatalf("GetUpload after reopen = %+v, %v; want offset 7000", got, err)
	}
	if _, err := s.AppendUpload(t.Context(), "app", up.ID, 7000, bytes.NewReader(data[7000:])); err != nil {
		t.Fatal(err)
	}
	if _, err := s.CommitUpload(t.Context(), "app", up.ID, digest.FromBytes(data)); err != nil {
		t.Fatalf("CommitUpload after reopen = %v", err)
	}
}

func TestUploadKeepsBytesOfAnInterruptedChunk(t *testing.T) {
	ctx := t.Context()
	s := newStore(t)
	up, _ := s.StartUpload(ctx, "app", "")
	got, err := s.AppendUpload(ctx, "app", up.ID, -1, io.MultiReader(strings.NewReader(strings.Repeat("a", 3000)), failingReader{errors.New("connection reset")}))
	if err == nil || got.Offset != 3000 {
		t.Fatalf("AppendUpload(interrupted) = %+v, %v; want offset 3000 and the read error", got, err)
	}
	if st, _ := s.GetUpload(ctx, "app", up.ID); st.Offset != 3000 {
		t.Fatalf("GetUpload offset = %d, want 3000", st.Offset)
	}
	s.AppendUpload(ctx, "app", up.ID, 3000, strings.NewReader("bbb"))
	if _, err := s.CommitUpload(ctx, "app", up.ID, digest.FromString(strings.Repeat("a", 3000)+"bbb")); err != nil {
		t.Fatalf("CommitUpload = %v", err)
	}
}

func TestUploadSessionsAreScoped(t *testing.T) {
	ctx := t.Context()
	s := newStore(t)
	up, _ := s.StartUpload(ctx, "app", "")
	for _, tc := range []struct{ repo, id string }{
		{"other", up.ID}, {"app", "../meta.db"}, {"app", "0123"}, {"app", strings.Repeat("z", 32)}, {"app", strings.Repeat("0", 32)},
	} {
		_, err := s.GetUpload(ctx, tc.repo, tc.id)
		wantErr(t, "GetUpload("+tc.repo+", "+tc.id+")", err, ErrUploadNotFound)
		_, err = s.AppendUpload(ctx, tc.repo, tc.id, -1, strings.NewReader("x"))
		wantErr(t, "AppendUpload("+tc.repo+", "+tc.id+")", err, ErrUploadNotFound)
	}
	if err := s.CancelUpload(ctx, "app", up.ID); err != nil {
		t.Fatalf("CancelUpload = %v", err)
	}
	wantErr(t, "CancelUpload(again)", s.CancelUpload(ctx, "app", up.ID), ErrUploadNotFound)
	if _, err := s.StartUpload(ctx, "app", "md5"); !errors.Is(err, ErrDigestInvalid) {
		t.Errorf("StartUpload(md5) = %v, want ErrDigestInvalid", err)
	}
}
