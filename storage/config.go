package storage

import (
	"errors"
	"fmt"
)

// Config is the [storage] section of nora.toml.
type Config struct {
	// Driver selects where blob bytes live: "filesystem".
	Driver string `toml:"driver"`
	// Root is the data directory: the bbolt metadata file and, for the
	// filesystem driver, the blobs and upload files.
	Root string `toml:"root"`
}

// DefaultConfig returns the embedded default: filesystem blobs in ./data.
func DefaultConfig() Config {
	return Config{Driver: "filesystem", Root: "./data"}
}

// Validate reports the first invalid value, naming its key.
func (c Config) Validate() error {
	switch c.Driver {
	case "filesystem":
	case "":
		return errors.New("storage.driver: must be set")
	default:
		return fmt.Errorf("storage.driver: unknown driver %q (want \"filesystem\")", c.Driver)
	}
	if c.Root == "" {
		return errors.New("storage.root: must be set")
	}
	return nil
}
