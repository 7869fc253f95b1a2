package storage

import (
	"testing"

	"github.com/minio/minio-go/v7"

	"github.com/nora-registry/nora/storage/s3test"
)

// TestS3UnrecordedUpload leaves a multipart upload as a process that died
// between requesting it and recording its id does, on versitygw and on
// MinIO: only the intent recorded before the request names it. The next
// abort lists the key's uploads and aborts it, and forgets the intent.
func TestS3UnrecordedUpload(t *testing.T) {
	for _, kind := range []string{"versitygw", "minio"} {
		t.Run(kind, func(t *testing.T) {
			srv := s3test.StartKind(t, kind)
			st, d := openS3Store(t, srv, "unrecorded")
			const key = "uploads/0123456789abcdef0123456789abcdef"
			if err := st.intend("token", key); err != nil {
				t.Fatal(err)
			}
			if _, err := d.core.NewMultipartUpload(t.Context(), d.bucket, d.object(key), minio.PutObjectOptions{}); err != nil {
				t.Fatal(err)
			}
			if n := len(srv.MultipartUploads()); n != 1 {
				t.Fatalf("%d multipart uploads, want 1", n)
			}
			if n, err := st.AbortMultipartUploads(t.Context()); n != 1 || err != nil {
				t.Errorf("AbortMultipartUploads = %d, %v; want 1, nil", n, err)
			}
			if ups := srv.MultipartUploads(); len(ups) != 0 {
				t.Errorf("multipart uploads after the abort = %q, want none", ups)
			}
			if in := journalled(st, bucketIntents); len(in) != 0 {
				t.Errorf("intents after the abort = %v, want none", in)
			}
			if n, err := st.AbortMultipartUploads(t.Context()); n != 0 || err != nil {
				t.Errorf("AbortMultipartUploads again = %d, %v; want 0, nil", n, err)
			}
		})
	}
}
