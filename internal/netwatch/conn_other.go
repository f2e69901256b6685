//go:build !linux

package netwatch

import (
	"errors"
	"fmt"
)

// dialNetlink fails: rtnetlink exists only on Linux.
func dialNetlink() (conn, error) {
	return nil, fmt.Errorf("open netlink socket: %w", errors.ErrUnsupported)
}
