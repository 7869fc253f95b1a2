package storage

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"testing"
	"time"
)

func TestRobots(t *testing.T) {
	root := t.TempDir()
	s := openAt(t, root)
	ctx := t.Context()
	if got, err := s.Robots(ctx); err != nil || len(got) != 0 {
		t.Fatalf("Robots() on a new store = %v, %v, want none", got, err)
	}
	if _, err := s.RobotByHash(ctx, []byte("x")); !errors.Is(err, ErrRobotNotFound) {
		t.Fatalf("RobotByHash on a new store = %v, want ErrRobotNotFound", err)
	}
	h1, h2 := sha256.Sum256([]byte("one")), sha256.Sum256([]byte("two"))
	now := time.Now().UTC().Truncate(time.Second)
	ci := Robot{Name: "ci-bot", Hash: h1[:], Permissions: []string{"push:team-a/**"}, Created: now, Expires: now.Add(time.Hour)}
	if err := s.CreateRobot(ctx, ci); err != nil {
		t.Fatalf("CreateRobot(ci-bot) = %v", err)
	}
	if err := s.CreateRobot(ctx, Robot{Name: "ci-bot", Hash: h2[:]}); !errors.Is(err, ErrRobotExists) {
		t.Fatalf("CreateRobot(ci-bot again) = %v, want ErrRobotExists", err)
	}
	if err := s.CreateRobot(ctx, Robot{Name: "a-bot", Hash: h2[:], Created: now}); err != nil {
		t.Fatalf("CreateRobot(a-bot) = %v", err)
	}
	if err := s.CreateRobot(ctx, Robot{Name: "", Hash: h2[:]}); err == nil {
		t.Fatal("CreateRobot(no name) = nil, want an error")
	}

	// Robots survive a reopen.
	s.Close()
	s = openAt(t, root)
	defer s.Close()
	list, err := s.Robots(ctx)
	if err != nil || len(list) != 2 || list[0].Name != "a-bot" || list[1].Name != "ci-bot" {
		t.Fatalf("Robots() = %+v, %v, want a-bot and ci-bot", list, err)
	}
	got, err := s.RobotByHash(ctx, h1[:])
	if err != nil || got.Name != "ci-bot" || !bytes.Equal(got.Hash, h1[:]) || !got.Expires.Equal(ci.Expires) || got.Permissions[0] != "push:team-a/**" {
		t.Fatalf("RobotByHash(h1) = %+v, %v, want ci-bot", got, err)
	}
	if err := s.DeleteRobot(ctx, "ci-bot"); err != nil {
		t.Fatalf("DeleteRobot(ci-bot) = %v", err)
	}
	if err := s.DeleteRobot(ctx, "ci-bot"); !errors.Is(err, ErrRobotNotFound) {
		t.Fatalf("DeleteRobot(ci-bot again) = %v, want ErrRobotNotFound", err)
	}
	if _, err := s.RobotByHash(ctx, h1[:]); !errors.Is(err, ErrRobotNotFound) {
		t.Fatalf("RobotByHash(revoked) = %v, want ErrRobotNotFound", err)
	}
}
