package admin

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"syscall"
)

// PermissionError says the caller may not use the socket or the outbox
// file at Path, and which group would let it. It wraps fs.ErrPermission.
type PermissionError struct {
	Path  string
	Group string // name (or number) of the group that owns Path
	Err   error
}

// Error tells the technician what to do.
func (e *PermissionError) Error() string {
	return fmt.Sprintf("permission denied on %s: run as root or a member of group %s", e.Path, e.Group)
}

// Unwrap returns the underlying error, which matches fs.ErrPermission.
func (e *PermissionError) Unwrap() error { return e.Err }

// PermissionDenied builds a PermissionError for path, such as a serial
// device the caller may not open. The group is that of path, or of the
// nearest directory above it the caller can see.
func PermissionDenied(path string, err error) *PermissionError { return permissionError(path, err) }

func permissionError(path string, err error) *PermissionError {
	gid := -1
	for p := path; ; p = filepath.Dir(p) {
		if fi, statErr := os.Stat(p); statErr == nil {
			if st, ok := fi.Sys().(*syscall.Stat_t); ok {
				gid = int(st.Gid)
			}
			break
		}
		if p == filepath.Dir(p) {
			break
		}
	}
	return &PermissionError{Path: path, Group: groupName(gid), Err: err}
}

// groupName is the name of gid, or its number if it has none.
func groupName(gid int) string {
	if gid < 0 {
		return "?"
	}
	if g, err := user.LookupGroupId(strconv.Itoa(gid)); err == nil {
		return g.Name
	}
	return strconv.Itoa(gid)
}

func isPermission(err error) bool { return errors.Is(err, fs.ErrPermission) }
