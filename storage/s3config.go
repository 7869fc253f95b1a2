package storage

import (
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/minio/minio-go/v7/pkg/s3utils"
)

// S3Config is the [storage.s3] section of nora.toml: where blob bytes live
// when [storage] driver = "s3". Metadata stays in bbolt under storage.root.
type S3Config struct {
	// Endpoint is the server's host[:port], without a scheme.
	Endpoint string `toml:"endpoint"`
	// Bucket must exist; nora does not create it.
	Bucket string `toml:"bucket"`
	// Region is sent in signatures; most servers other than AWS accept
	// any value.
	Region string `toml:"region"`
	// Prefix is prepended to every object name, so one bucket can hold
	// several registries.
	Prefix string `toml:"prefix"`
	// AccessKey and SecretKey are the credentials; write them as
	// ${ENV_VAR} to keep them out of the file.
	AccessKey string `toml:"access_key"`
	SecretKey string `toml:"secret_key"`
	// Secure selects https.
	Secure bool `toml:"secure"`
	// CAFile is a PEM bundle trusted for the endpoint's certificate, in
	// addition to the system's.
	CAFile string `toml:"ca_file"`
	// PathStyle addresses the bucket as endpoint/bucket rather than
	// bucket.endpoint (MinIO, Ceph RGW and versitygw want this).
	PathStyle bool `toml:"path_style"`
	// Redirect answers blob GETs with 307 to a presigned URL, so clients
	// fetch straight from the object store.
	Redirect bool `toml:"redirect"`
	// RedirectExpiry is how long a presigned URL stays valid, e.g. "15m".
	RedirectExpiry string `toml:"redirect_expiry"`
	// ComposeDelay is how long, with Redirect on, a blob pushed in
	// chunks is served by the registry from its segments before they
	// are copied into one object in the background, e.g. "10s".
	ComposeDelay string `toml:"compose_delay"`
	// PartSizeMiB is the size of the parts an upload is sent in, in MiB
	// (at least 5, the S3 minimum). Each part is spooled on local disk
	// under storage.root, not held in memory.
	PartSizeMiB int64 `toml:"part_size_mib"`
	// MaxRetries is how many times an idempotent request is tried
	// before the registry answers 503.
	MaxRetries int `toml:"max_retries"`
	// Timeout bounds the wait for the server's response headers, e.g.
	// "30s": a server that hangs gets 503 rather than a hung client.
	Timeout string `toml:"timeout"`
}

// DefaultS3Config returns the defaults of [storage.s3].
func DefaultS3Config() S3Config {
	return S3Config{
		Region:         "us-east-1",
		Secure:         true,
		PathStyle:      true,
		RedirectExpiry: "15m",
		ComposeDelay:   "10s",
		PartSizeMiB:    16,
		MaxRetries:     3,
		Timeout:        "30s",
	}
}

// Validate reports every invalid value, each naming its key.
func (c S3Config) Validate() error {
	var errs []error
	bad := func(format string, a ...any) { errs = append(errs, fmt.Errorf(format, a...)) }
	switch {
	case c.Endpoint == "":
		bad("storage.s3.endpoint: must be set")
	case strings.Contains(c.Endpoint, "://") || strings.Contains(c.Endpoint, "/"):
		bad("storage.s3.endpoint: %q: want host[:port] without a scheme or path (secure selects https)", c.Endpoint)
	}
	switch {
	case c.Bucket == "":
		bad("storage.s3.bucket: must be set")
	case s3utils.CheckValidBucketName(c.Bucket) != nil:
		bad("storage.s3.bucket: %q: %v", c.Bucket, s3utils.CheckValidBucketName(c.Bucket))
	}
	if c.AccessKey == "" {
		bad("storage.s3.access_key: must be set")
	}
	if c.SecretKey == "" {
		bad("storage.s3.secret_key: must be set")
	}
	if strings.HasPrefix(c.Prefix, "/") || strings.Contains(c.Prefix, "..") {
		bad("storage.s3.prefix: %q: must be relative, without ..", c.Prefix)
	}
	if c.PartSizeMiB < 5 || c.PartSizeMiB > 5<<10 {
		bad("storage.s3.part_size_mib: %d: must be between 5 and 5120", c.PartSizeMiB)
	}
	if c.MaxRetries < 1 {
		bad("storage.s3.max_retries: %d: must be at least 1", c.MaxRetries)
	}
	if d, err := ParseDuration(c.Timeout); err != nil || d <= 0 {
		bad("storage.s3.timeout: %q: want a positive duration such as \"30s\"", c.Timeout)
	}
	if d, err := ParseDuration(c.RedirectExpiry); err != nil || d < time.Second || d > 7*24*time.Hour {
		bad("storage.s3.redirect_expiry: %q: want a duration between 1s and 168h", c.RedirectExpiry)
	}
	if d, err := ParseDuration(c.ComposeDelay); err != nil || d < 0 || d > 7*24*time.Hour {
		bad("storage.s3.compose_delay: %q: want a duration between 0s and 168h", c.ComposeDelay)
	}
	if c.CAFile != "" {
		if _, err := os.Stat(c.CAFile); err != nil {
			bad("storage.s3.ca_file: %w", err)
		}
	}
	return errors.Join(errs...)
}

func (c S3Config) timeout() time.Duration {
	d, _ := ParseDuration(c.Timeout)
	return d
}

func (c S3Config) redirectExpiry() time.Duration {
	d, _ := ParseDuration(c.RedirectExpiry)
	return d
}

func (c S3Config) composeDelay() time.Duration {
	d, _ := ParseDuration(c.ComposeDelay)
	return d
}
