package storage

import (
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"sort"
	"time"

	bolt "go.etcd.io/bbolt"
)

// Robot token errors.
var (
	// ErrRobotNotFound means no robot token has this name (or hash).
	ErrRobotNotFound = errors.New("robot token not found")
	// ErrRobotExists means a robot token with this name already exists.
	ErrRobotExists = errors.New("robot token already exists")
)

// bucketRobots holds name → Robot (JSON). It is created at first use, so
// stores made before robot tokens existed open unchanged.
var bucketRobots = []byte("robots")

// Robot is a robot token as stored: never the token itself, only its
// SHA-256. Tokens carry 256 random bits, so a fast hash is enough: there is
// nothing to brute-force.
type Robot struct {
	Name        string    `json:"name"`
	Hash        []byte    `json:"hash"`
	Permissions []string  `json:"permissions"`
	Created     time.Time `json:"created"`
	// Expires is zero for a token that never expires.
	Expires time.Time `json:"expires,omitzero"`
}

// CreateRobot stores r. It returns ErrRobotExists if the name is taken.
func (s *Store) CreateRobot(ctx context.Context, r Robot) error {
	if r.Name == "" || len(r.Hash) == 0 {
		return fmt.Errorf("create robot %q: name and hash are required", r.Name)
	}
	return s.commit.update(func(tx *bolt.Tx) error {
		b, err := tx.CreateBucketIfNotExists(bucketRobots)
		if err != nil {
			return err
		}
		if b.Get([]byte(r.Name)) != nil {
			return fmt.Errorf("robot %q: %w", r.Name, ErrRobotExists)
		}
		return putJSON(b, []byte(r.Name), r)
	})
}

// DeleteRobot removes the robot token name. It returns ErrRobotNotFound if
// there is none.
func (s *Store) DeleteRobot(ctx context.Context, name string) error {
	return s.commit.update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketRobots)
		if b == nil || b.Get([]byte(name)) == nil {
			return fmt.Errorf("robot %q: %w", name, ErrRobotNotFound)
		}
		return b.Delete([]byte(name))
	})
}

// Robots lists the robot tokens by name; the slice is the caller's.
func (s *Store) Robots(ctx context.Context) ([]Robot, error) {
	var out []Robot
	err := s.view(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketRobots)
		if b == nil {
			return nil
		}
		return b.ForEach(func(k, v []byte) error {
			var r Robot
			if !getJSON(b, k, &r) {
				return fmt.Errorf("robot %q: corrupt record", k)
			}
			out = append(out, r)
			return nil
		})
	})
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, err
}

// RobotByHash returns the robot token whose hash is hash, expired or not.
// It returns ErrRobotNotFound if none matches. Hashes are compared in
// constant time.
func (s *Store) RobotByHash(ctx context.Context, hash []byte) (Robot, error) {
	robots, err := s.Robots(ctx)
	if err != nil {
		return Robot{}, err
	}
	found := -1
	for i := range robots {
		if subtle.ConstantTimeCompare(robots[i].Hash, hash) == 1 {
			found = i
		}
	}
	if found < 0 {
		return Robot{}, ErrRobotNotFound
	}
	return robots[found], nil
}
