package storage

import (
	"errors"
	"fmt"
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
}

// DefaultConfig returns the embedded default: filesystem blobs in ./data.
func DefaultConfig() Config {
	return Config{Driver: "filesystem", Root: "./data", S3: DefaultS3Config()}
}

// Validate reports the first invalid value, naming its key.
func (c Config) Validate() error {
	switch c.Driver {
	case "filesystem":
	case "s3":
		if err := c.S3.Validate(); err != nil {
			return err
		}
	case "":
		return errors.New("storage.driver: must be set")
	default:
		return fmt.Errorf("storage.driver: unknown driver %q (want \"filesystem\" or \"s3\")", c.Driver)
	}
	if c.Root == "" {
		return errors.New("storage.root: must be set")
	}
	return nil
}
