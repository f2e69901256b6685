package gateway

import (
	"errors"

	"taxi-agent/internal/config"
)

// Sentinel errors of the gateway.
var (
	// ErrKeyPermissions means a private key file is readable by group or
	// others (config.CheckPrivate).
	ErrKeyPermissions = config.ErrKeyPermissions
	// ErrCAExists means ca init found a CA already in the directory.
	ErrCAExists = errors.New("a CA already exists in this directory")
	// ErrNoCA means the directory holds no fleet CA.
	ErrNoCA = errors.New("no fleet CA in this directory (run 'taxi-gateway ca init')")
	// ErrNotIssued means no certificate with that serial or plate was issued.
	ErrNotIssued = errors.New("no such certificate was issued")
	// ErrBadPlate means a plate is not a full plate with its province
	// character.
	ErrBadPlate = errors.New("not a full plate with its province character")
	// ErrQueueTimeout means a punch waited limit.max_wait without a slot.
	ErrQueueTimeout = errors.New("no slot within limit.max_wait")
)
