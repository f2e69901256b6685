package admin

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"syscall"
)

// PermissionError says the caller may not use the socket or the outbox
// file at Path, and who may. It wraps fs.ErrPermission.
type PermissionError struct {
	Path  string
	Group string // name (or number) of the group that owns Path
	// Owner is set when the caller is already in Group and still may not:
	// only the owner (or root) may, e.g. a file of mode 0600.
	Owner string
	Err   error
}

// Error tells the technician what to do.
func (e *PermissionError) Error() string {
	if e.Owner != "" {
		return fmt.Sprintf("permission denied on %s: run as root or as user %s (group %s is not enough)", e.Path, e.Owner, e.Group)
	}
	return fmt.Sprintf("permission denied on %s: run as root or a member of group %s", e.Path, e.Group)
}

// Unwrap returns the underlying error, which matches fs.ErrPermission.
func (e *PermissionError) Unwrap() error { return e.Err }

// PermissionDenied builds a PermissionError for path, such as a serial
// device the caller may not open. The group is that of path, or of the
// nearest directory above it the caller can see.
func PermissionDenied(path string, err error) *PermissionError { return permissionError(path, err) }

func permissionError(path string, err error) *PermissionError {
	uid, gid := -1, -1
	for p := path; ; p = filepath.Dir(p) {
		if fi, statErr := os.Stat(p); statErr == nil {
			if st, ok := fi.Sys().(*syscall.Stat_t); ok {
				uid, gid = int(st.Uid), int(st.Gid)
			}
			break
		}
		if p == filepath.Dir(p) {
			break
		}
	}
	pe := &PermissionError{Path: path, Group: groupName(gid), Err: err}
	if gid >= 0 && inGroup(gid) {
		pe.Owner = userName(uid)
	}
	return pe
}

// inGroup reports whether this process has gid as its group or a
// supplementary group.
func inGroup(gid int) bool {
	if os.Getegid() == gid {
		return true
	}
	groups, _ := os.Getgroups()
	return slices.Contains(groups, gid)
}

// userName is the name of uid, or its number if it has none.
func userName(uid int) string {
	if u, err := user.LookupId(strconv.Itoa(uid)); err == nil {
		return u.Username
	}
	return strconv.Itoa(uid)
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
