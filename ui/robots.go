package ui

import (
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/nora-registry/nora/auth"
	"github.com/nora-registry/nora/registry"
	"github.com/nora-registry/nora/storage"
)

// WithRobots manages robot tokens with a on the robot tokens page: the
// server passes the auth.Robots its auth checks tokens with, so a revoke
// ends the robot's sessions and cached checks at once.
func WithRobots(a auth.RobotAdmin) Option { return func(h *Handler) { h.robots = a } }

// robotsView is the robot tokens page.
type robotsView struct {
	Robots []auth.RobotInfo
	// Created and Token are the robot just created and its secret,
	// shown this once.
	Created, Token string
}

// RobotRequest creates a robot token: name, permission strings, and a
// lifetime (a Go duration such as "720h"; "" never expires).
type RobotRequest struct {
	Name        string   `json:"name"`
	Permissions []string `json:"permissions"`
	TTL         string   `json:"ttl"`
}

// robotAdmin checks an admin request about robot tokens: the admin
// permission, and a store to manage them in.
func (h *Handler) robotAdmin(c caller) error {
	if err := c.mayAdmin(); err != nil {
		return err
	}
	if h.robots == nil {
		return apiError(registry.CodeUnsupported, "robot tokens are not managed here")
	}
	return nil
}

// createRobot creates rq's robot and returns its secret.
func (h *Handler) createRobot(r *http.Request, rq RobotRequest) (string, error) {
	var ttl time.Duration
	if rq.TTL != "" {
		d, err := storage.ParseDuration(rq.TTL)
		if err != nil || d < 0 {
			return "", apiError(codeInvalid, "ttl: want a duration such as 720h, or nothing for no expiry")
		}
		ttl = d
	}
	token, err := h.robots.Create(r.Context(), rq.Name, rq.Permissions, ttl)
	switch {
	case errors.Is(err, storage.ErrRobotExists):
		return "", apiError(codeConflict, "a robot token named "+rq.Name+" exists: revoke it first")
	case err != nil:
		return "", apiError(codeInvalid, err.Error())
	}
	h.log.Info().Str("robot", rq.Name).Str("permissions", strings.Join(rq.Permissions, ",")).Msg("dashboard robot token created")
	return token, nil
}

// revokeRobot revokes robot name.
func (h *Handler) revokeRobot(r *http.Request, name string) error {
	err := h.robots.Revoke(r.Context(), name)
	if errors.Is(err, storage.ErrRobotNotFound) {
		return apiError(registry.CodeNotFound, "no robot token named "+name)
	}
	if err == nil {
		h.log.Info().Str("robot", name).Msg("dashboard robot token revoked")
	}
	return err
}

// codeConflict answers a create whose name is taken.
var codeConflict = registry.Code{Value: "CONFLICT", Status: http.StatusConflict, Message: "conflict"}

// robotsPage serves GET /ui/robots, POST /ui/robots (create) and
// POST /ui/robots/{name}/revoke.
func (h *Handler) robotsPage(r *http.Request, c caller, v *view) (string, error) {
	if err := h.robotAdmin(c); err != nil {
		return "", err
	}
	rv := &robotsView{}
	v.Title, v.Data = "Robot tokens", rv
	if r.Method == http.MethodPost {
		r.Body = http.MaxBytesReader(nil, r.Body, maxFormBytes)
		if err := r.ParseForm(); err != nil {
			return "", apiError(codeInvalid, "invalid form")
		}
		if err := h.checkMutation(r, c, r.PostForm.Get("csrf")); err != nil {
			return "", err
		}
		if name := r.PathValue("name"); name != "" {
			if err := h.revokeRobot(r, name); err != nil {
				return "", err
			}
			v.Redirect = "/ui/robots?revoked=" + url.QueryEscape(name)
			return "robots", nil
		}
		rq := RobotRequest{Name: strings.TrimSpace(r.PostForm.Get("name")), Permissions: strings.Fields(strings.ReplaceAll(r.PostForm.Get("permissions"), ",", " ")), TTL: strings.TrimSpace(r.PostForm.Get("ttl"))}
		token, err := h.createRobot(r, rq)
		if err != nil {
			v.Error = message(registry.AsError(err)) // shown above the form
		}
		rv.Created, rv.Token = rq.Name, token
	}
	if n := r.URL.Query().Get("revoked"); n != "" && r.Method == http.MethodGet {
		v.Notice = "Revoked the robot token " + n + "."
	}
	list, err := h.robots.List(r.Context())
	rv.Robots = list
	return "robots", err
}

// GET /api/v1/robots, POST /api/v1/robots and DELETE /api/v1/robots/{name}.
func (h *Handler) apiRobots(w http.ResponseWriter, r *http.Request, c caller) error {
	if err := h.robotAdmin(c); err != nil {
		return err
	}
	switch r.Method {
	case http.MethodGet:
		list, err := h.robots.List(r.Context())
		if err != nil {
			return err
		}
		writeJSON(w, map[string]any{"robots": list})
		return nil
	case http.MethodDelete:
		if err := h.checkMutation(r, c, ""); err != nil {
			return err
		}
		if err := h.revokeRobot(r, r.PathValue("name")); err != nil {
			return err
		}
		writeJSON(w, map[string]string{"revoked": r.PathValue("name")})
		return nil
	}
	if err := h.checkMutation(r, c, ""); err != nil {
		return err
	}
	var rq RobotRequest
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxFormBytes))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&rq); err != nil {
		return apiError(codeInvalid, "want a JSON body {\"name\",\"permissions\":[…],\"ttl\"}: "+err.Error())
	}
	token, err := h.createRobot(r, rq)
	if err != nil {
		return err
	}
	writeJSONStatus(w, http.StatusCreated, map[string]string{"name": rq.Name, "token": token})
	return nil
}
