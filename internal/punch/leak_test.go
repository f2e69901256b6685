package punch_test

import (
	"bytes"
	"go/ast"
	"go/parser"
	"go/token"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"

	"taxi-agent/internal/admin"
	"taxi-agent/internal/meter"
	"taxi-agent/internal/metersim"
	"taxi-agent/internal/outbox"
	"taxi-agent/internal/punch"
	"taxi-agent/internal/punchsim"
	"taxi-agent/internal/simrig"
)

// licence is the driver licence every sample carries; its last four
// characters, and nothing longer, may reach a log line.
const licence = "42108319880906011X"

// carriers holds a sample, with the licence in every field that can hold
// it, of each exported type under internal/ that carries a driver licence
// (TestEveryCarrierIsLogged finds them in the source).
func carriers() map[string]any {
	status := meter.StatusReply{DriverLicence: licence, CompanyLicence: "440300000001", Plate: "B12345"}
	hb := meter.HeartbeatStatus{DriverLicence: licence, SignedIn: true}
	failed := meter.FailedSignIn{DriverLicence: licence, Result: 0xFF}
	stats := meter.LinkStats{Connected: true, Heartbeat: &hb, MeterStatus: &meter.MeterStatus{Reply: status}, LastFailedSignIn: &failed}
	id := meter.Identity{DriverLicence: licence, CompanyLicence: "440300000001", Plate: "B12345"}
	ev := punch.Event{Type: punch.SignIn, DriverLicense: licence, PlateNumber: "粤B12345", RegionID: 440300, EventTime: "2026-11-28T10:30:00.123+08:00"}
	simOpts := metersim.Options{Status: status}
	p := punchsim.Punch{DriverLicense: licence, EventType: punch.SignIn}
	return map[string]any{
		"internal/punch.Event": ev,
		"internal/outbox.Record": outbox.Record{ID: 1, State: outbox.Pending, Event: ev,
			Identity: punch.SignIn + "|" + licence + "|202611281030|1234"},
		"internal/outbox.Driver":         outbox.Driver{Licence: licence, Company: "440300000001"},
		"internal/meter.Event":           meter.Event{Command: meter.CmdSignIn, DriverLicence: licence},
		"internal/meter.FailedSignIn":    failed,
		"internal/meter.Heartbeat":       meter.Heartbeat{DriverLicence: licence},
		"internal/meter.HeartbeatStatus": hb,
		"internal/meter.Identity":        id,
		"internal/meter.LinkStats":       stats,
		"internal/meter.MeterStatus":     meter.MeterStatus{Reply: status},
		"internal/meter.RequestAnswer":   meter.RequestAnswer{DriverLicence: licence},
		"internal/meter.SignIn":          meter.SignIn{DriverLicence: licence, Result: 0x90},
		"internal/meter.SignOut":         meter.SignOut{DriverLicence: licence},
		"internal/meter.StatusReply":     status,
		"internal/metersim.Options":      simOpts,
		"internal/metersim.Result":       metersim.Result{Identity: id, Request: &metersim.Result{Identity: id}},
		"internal/punchsim.Punch":        p,
		"internal/punchsim.Exchange":     punchsim.Exchange{Seq: 1, Punch: &p},
		"internal/simrig.Options":        simrig.Options{Meter: simOpts},
		"internal/admin.Status":          admin.Status{Meter: stats},
	}
}

// TestNoLicenceInLogs logs each licence carrier, by value and by pointer,
// with slog's JSON handler: no line may hold the whole licence, and the
// masked one must still be there.
func TestNoLicenceInLogs(t *testing.T) {
	for name, v := range carriers() {
		var buf bytes.Buffer
		log := slog.New(slog.NewJSONHandler(&buf, nil))
		log.Info("sample", "value", v, "pointer", pointerTo(v))
		log.Info("grouped", slog.Group("g", "value", v))
		out := buf.String()
		if strings.Contains(out, licence) {
			t.Errorf("%s: the whole licence reaches the log: %s", name, out)
		}
		if !strings.Contains(out, "011X") {
			t.Errorf("%s: the masked licence is not logged: %s", name, out)
		}
	}
}

// pointerTo returns a pointer to a copy of v for the types call sites
// hold by pointer, so that the pointer's log form is checked too.
func pointerTo(v any) any {
	switch x := v.(type) {
	case punch.Event:
		return &x
	case outbox.Record:
		return &x
	case meter.LinkStats:
		return &x
	case admin.Status:
		return &x
	}
	return v
}

// licenceField names the fields that hold a driver licence.
var licenceField = regexp.MustCompile(`^(Driver)?Licen[cs]e$`)

// TestEveryCarrierIsLogged finds, in the source under internal/, every
// exported struct type with an exported field that holds a driver licence,
// directly or through another such type, and checks that TestNoLicenceInLogs
// logs it: a new carrier fails here until it has a LogValue and a sample.
func TestEveryCarrierIsLogged(t *testing.T) {
	found := licenceCarriers(t, filepath.Join("..", "..", "internal"))
	var want []string
	for name := range carriers() {
		want = append(want, name)
	}
	sort.Strings(want)
	for _, name := range found {
		if !slices.Contains(want, name) {
			t.Errorf("%s carries a driver licence but is not logged by TestNoLicenceInLogs", name)
		}
	}
	for _, name := range want {
		if !slices.Contains(found, name) {
			t.Errorf("%s is in the samples but the source scan does not find it (scan broken?)", name)
		}
	}
}

type structType struct {
	pkg     string
	st      *ast.StructType
	imports map[string]string // local name → path below the module
}

// licenceCarriers returns "internal/pkg.Type" for each exported carrier.
func licenceCarriers(t *testing.T, root string) []string {
	t.Helper()
	module := filepath.Dir(filepath.Clean(root))
	types := map[string]structType{}
	fset := token.NewFileSet()
	err := filepath.WalkDir(root, func(path string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && d.Name() == "testdata" {
			return filepath.SkipDir
		}
		if d.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		f, err := parser.ParseFile(fset, path, nil, parser.SkipObjectResolution)
		if err != nil {
			return err
		}
		pkg, _ := filepath.Rel(module, filepath.Dir(path))
		imports := map[string]string{}
		for _, im := range f.Imports {
			p, _ := strconv.Unquote(im.Path.Value)
			name := filepath.Base(p)
			if im.Name != nil {
				name = im.Name.Name
			}
			imports[name] = strings.TrimPrefix(p, "taxi-agent/")
		}
		ast.Inspect(f, func(n ast.Node) bool {
			if ts, ok := n.(*ast.TypeSpec); ok {
				if st, ok := ts.Type.(*ast.StructType); ok {
					types[filepath.ToSlash(pkg)+"."+ts.Name.Name] = structType{filepath.ToSlash(pkg), st, imports}
				}
			}
			return true
		})
		return nil
	})
	if err != nil {
		t.Fatalf("scan %s: %v", root, err)
	}
	if len(types) < 50 {
		t.Fatalf("scan %s found only %d struct types", root, len(types))
	}
	carries := map[string]bool{}
	for changed := true; changed; {
		changed = false
		for name, ty := range types {
			if !carries[name] && carriesLicence(ty, carries) {
				carries[name], changed = true, true
			}
		}
	}
	var out []string
	for name := range carries {
		if ast.IsExported(name[strings.LastIndex(name, ".")+1:]) {
			out = append(out, name)
		}
	}
	sort.Strings(out)
	return out
}

// carriesLicence reports whether one of ty's exported fields is a licence
// or of a type already known to carry one.
func carriesLicence(ty structType, carries map[string]bool) bool {
	for _, f := range ty.st.Fields.List {
		exported := len(f.Names) == 0 // embedded
		for _, n := range f.Names {
			if ast.IsExported(n.Name) {
				exported = true
				if licenceField.MatchString(n.Name) {
					return true
				}
			}
		}
		if exported && carries[typeName(ty, f.Type)] {
			return true
		}
	}
	return false
}

// typeName is "internal/pkg.Type" for a field's named type, through
// pointers, slices and map values.
func typeName(ty structType, e ast.Expr) string {
	switch x := e.(type) {
	case *ast.Ident:
		return ty.pkg + "." + x.Name
	case *ast.StarExpr:
		return typeName(ty, x.X)
	case *ast.ArrayType:
		return typeName(ty, x.Elt)
	case *ast.MapType:
		return typeName(ty, x.Value)
	case *ast.SelectorExpr:
		if id, ok := x.X.(*ast.Ident); ok {
			return ty.imports[id.Name] + "." + x.Sel.Name
		}
	}
	return ""
}
