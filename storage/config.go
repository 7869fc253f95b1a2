package storage

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
)

// Config is the [storage] section of nora.toml.
type Config struct {
	// Driver selects where blob bytes live: "filesystem" or "s3".
	Driver string `toml:"driver"`
	// Root is the data directory: the bbolt metadata file and, for the
	// filesystem driver, the blobs and upload files; for s3, the spool
	// of upload parts on their way to the bucket.
	Root string `toml:"root"`
	// S3 configures the s3 driver.
	S3 S3Config `toml:"s3"`
	// MaxUploads caps the upload sessions open at once, 0 for no cap.
	MaxUploads int `toml:"max_uploads"`
	// MaxUploadsPerClient caps the sessions one identity (for anonymous
	// callers, one address) has open at once, 0 for no cap.
	MaxUploadsPerClient int `toml:"max_uploads_per_client"`
	// MaxBlobSize is the largest blob accepted, as bytes or with a unit
	// ("512MiB", "10GiB", "1TB"); "0" accepts any size.
	MaxBlobSize string `toml:"max_blob_size"`
	// UploadIdleExpiry ends an upload session that received no bytes
	// for this long, e.g. "1h"; "0" keeps it until gc.upload_max_age.
	UploadIdleExpiry string `toml:"upload_idle_expiry"`
	// Release names the running release ("nora v1.4.0") in the text
	// the store leaves in meta.db; set by the binary, not the file.
	Release string `toml:"-"`
}

// DefaultConfig returns the embedded default: filesystem blobs in ./data,
// at most 10,000 open upload sessions (1,000 per client) ending after an
// hour without a write, blobs of any size.
func DefaultConfig() Config {
	return Config{Driver: "filesystem", Root: "./data", S3: DefaultS3Config(),
		MaxUploads: 10000, MaxUploadsPerClient: 1000, MaxBlobSize: "0", UploadIdleExpiry: "1h"}
}

// sizeUnits are the suffixes ParseSize accepts, longest first.
var sizeUnits = []struct {
	suffix string
	mult   int64
}{
	{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30}, {"TiB", 1 << 40},
	{"KB", 1e3}, {"MB", 1e6}, {"GB", 1e9}, {"TB", 1e12}, {"B", 1},
}

// ParseSize parses a byte count with an optional unit: "1048576",
// "512MiB", "10GiB", "2TB". "" is 0.
func ParseSize(s string) (int64, error) {
	if s == "" {
		return 0, nil
	}
	num, mult := s, int64(1)
	for _, u := range sizeUnits {
		if n, ok := strings.CutSuffix(s, u.suffix); ok {
			num, mult = strings.TrimSpace(n), u.mult
			break
		}
	}
	n, err := strconv.ParseInt(num, 10, 64)
	if err != nil || n < 0 || (n > 0 && n > math.MaxInt64/mult) {
		return 0, fmt.Errorf("%q is not a size (bytes, or a number with KiB, MiB, GiB, TiB, KB, MB, GB or TB)", s)
	}
	return n * mult, nil
}

// parseDurationOrZero is time.ParseDuration that also takes "0" and "".
func parseDurationOrZero(s string) (time.Duration, error) {
	if s == "" || s == "0" {
		return 0, nil
	}
	d, err := ParseDuration(s)
	if err == nil && d < 0 {
		err = errors.New("negative")
	}
	return d, err
}

// Validate reports every invalid value, each naming its key.
func (c Config) Validate() error {
	var errs []error
	switch c.Driver {
	case "filesystem":
	case "s3":
		errs = append(errs, c.S3.Validate())
	case "":
		errs = append(errs, errors.New("storage.driver: must be set"))
	default:
		errs = append(errs, fmt.Errorf("storage.driver: unknown driver %q (want \"filesystem\" or \"s3\")", c.Driver))
	}
	if c.Root == "" {
		errs = append(errs, errors.New("storage.root: must be set"))
	}
	if c.MaxUploads < 0 {
		errs = append(errs, errors.New("storage.max_uploads: must be 0 (no cap) or more"))
	}
	if c.MaxUploadsPerClient < 0 {
		errs = append(errs, errors.New("storage.max_uploads_per_client: must be 0 (no cap) or more"))
	}
	if _, err := ParseSize(c.MaxBlobSize); err != nil {
		errs = append(errs, fmt.Errorf("storage.max_blob_size: %w", err))
	}
	if _, err := parseDurationOrZero(c.UploadIdleExpiry); err != nil {
		errs = append(errs, fmt.Errorf("storage.upload_idle_expiry: %q is not a duration such as \"1h\" or \"0\"", c.UploadIdleExpiry))
	}
	return errors.Join(errs...)
}
