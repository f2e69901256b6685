package main

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// report is bench/latest.json.
type report struct {
	Commit  string   `json:"commit"`
	Dirty   bool     `json:"dirty"`
	Go      string   `json:"go"`
	Nproc   int      `json:"nproc"`
	Date    string   `json:"date"`
	Machine machine  `json:"machine"`
	Figures []figure `json:"figures"`
}

type machine struct {
	Arch   string `json:"arch"`
	CPU    string `json:"cpu"`
	Kernel string `json:"kernel"`
	MemMiB int64  `json:"mem_mib"`
	FS     string `json:"work_fs"` // file system of the work directory
}

// figure is one row: a measurement, its floor from the same run when there
// is one, and the aim.
type figure struct {
	Name     string  `json:"name"`
	Value    float64 `json:"value"`
	Unit     string  `json:"unit"`
	Floor    float64 `json:"floor,omitempty"`
	FloorIs  string  `json:"floor_is,omitempty"`
	Ratio    float64 `json:"ratio,omitempty"`
	Aim      string  `json:"aim,omitempty"`
	Met      *bool   `json:"met,omitempty"`
	Note     string  `json:"note,omitempty"`
	decimals int
}

func newReport(work string) *report {
	r := &report{
		Go:    runtime.Version(),
		Nproc: runtime.NumCPU(),
		Date:  time.Now().UTC().Format(time.RFC3339),
	}
	if out, err := exec.Command("git", "rev-parse", "HEAD").Output(); err == nil {
		r.Commit = strings.TrimSpace(string(out))
	}
	if err := exec.Command("git", "diff", "--quiet", "HEAD", "--").Run(); err != nil {
		r.Dirty = true
	}
	if out, err := exec.Command("go", "version").Output(); err == nil {
		r.Go = strings.TrimPrefix(strings.TrimSpace(string(out)), "go version ")
	}
	var u unix.Utsname
	if unix.Uname(&u) == nil {
		r.Machine.Arch = unix.ByteSliceToString(u.Machine[:])
		r.Machine.Kernel = unix.ByteSliceToString(u.Release[:])
	}
	r.Machine.CPU = cpuModel()
	var si unix.Sysinfo_t
	if unix.Sysinfo(&si) == nil {
		r.Machine.MemMiB = int64(si.Totalram) * int64(si.Unit) >> 20
	}
	r.Machine.FS = fsType(work)
	return r
}

func cpuModel() string {
	f, err := os.Open("/proc/cpuinfo")
	if err != nil {
		return ""
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if k, v, ok := strings.Cut(sc.Text(), ":"); ok && strings.TrimSpace(k) == "model name" {
			return strings.TrimSpace(v)
		}
	}
	return ""
}

func fsType(dir string) string {
	var st unix.Statfs_t
	if err := unix.Statfs(dir, &st); err != nil {
		return "unknown"
	}
	names := map[int64]string{
		unix.EXT4_SUPER_MAGIC: "ext4", unix.TMPFS_MAGIC: "tmpfs", unix.XFS_SUPER_MAGIC: "xfs",
		unix.BTRFS_SUPER_MAGIC: "btrfs", unix.OVERLAYFS_SUPER_MAGIC: "overlayfs", unix.F2FS_SUPER_MAGIC: "f2fs",
	}
	if n, ok := names[int64(st.Type)]; ok {
		return n
	}
	return fmt.Sprintf("0x%x", st.Type)
}

func (r *report) add(f figure) { r.Figures = append(r.Figures, f) }

func met(ok bool) *bool { return &ok }

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

func (r *report) ack(a ackResult, valueBytes int) {
	for _, q := range []struct {
		name string
		q    float64
	}{{"median", 0.5}, {"p99", 0.99}} {
		agent, bare := quantile(a.Agent, q.q), quantile(a.Bare, q.q)
		ratio := float64(agent) / float64(bare)
		r.add(figure{Name: fmt.Sprintf("Ack latency, %s of %d sign-outs", q.name, a.Events), Value: ms(agent), Unit: "ms",
			Floor: ms(bare), FloorIs: fmt.Sprintf("bare bbolt Update of the %d stored bytes, same disk", valueBytes),
			Ratio: ratio, Aim: "≤ 1.5×", Met: met(ratio <= 1.5), decimals: 2})
	}
}

func (r *report) drain(d drainResult) {
	agent := float64(d.Events) / d.Agent.Seconds()
	bare := float64(d.Events) / d.Bare.Seconds()
	r.add(figure{Name: fmt.Sprintf("Drain rate, %d queued events (agent binary, outbox on disk)", d.Events), Value: agent, Unit: "events/s",
		Floor: bare, FloorIs: "bare sign + POST + verify loop, same keys and server", Ratio: agent / bare,
		Aim: "≥ 0.9×", Met: met(agent/bare >= 0.9), Note: "exec → last delivery"})
}

func (r *report) uploaderDrain(ratio, drain, bare float64) {
	r.add(figure{Name: "Drain rate, drain loop on an in-memory store (go test -bench DrainVsBare)", Value: drain, Unit: "events/s",
		Floor: bare, FloorIs: "the same bare loop", Ratio: ratio, Aim: "≥ 0.9×", Met: met(ratio >= 0.9)})
}

func (r *report) footprint(id idleResult, bl backlogResult) {
	mib := func(b int64) float64 { return float64(b) / (1 << 20) }
	r.add(figure{Name: "RSS, idle", Value: mib(id.Memory.RSS), Unit: "MiB", decimals: 1,
		Note: fmt.Sprintf("anon %.1f MiB, file %.1f MiB", mib(id.Memory.Anon), mib(id.Memory.File))})
	delta := mib(bl.Memory.RSS) - mib(id.Memory.RSS)
	r.add(figure{Name: fmt.Sprintf("RSS with %d pending events", bl.Pending), Value: mib(bl.Memory.RSS), Unit: "MiB", decimals: 1,
		Floor: mib(id.Memory.RSS), FloorIs: "idle RSS", Aim: "≤ idle + 4 MiB", Met: met(delta <= 4),
		Note: fmt.Sprintf("+%.1f MiB; file-backed %.1f MiB: the binary and the mmapped %.1f MiB outbox, clean pages the kernel can reclaim", delta, mib(bl.Memory.File), mib(bl.OutboxBytes))})
	anon := mib(bl.Memory.Anon) - mib(id.Memory.Anon)
	r.add(figure{Name: fmt.Sprintf("Anonymous RSS with %d pending events", bl.Pending), Value: mib(bl.Memory.Anon), Unit: "MiB", decimals: 1,
		Floor: mib(id.Memory.Anon), FloorIs: "idle anonymous RSS", Aim: "≤ idle + 4 MiB", Met: met(anon <= 4),
		Note: fmt.Sprintf("%+.1f MiB: heap and stacks, what the kernel cannot reclaim", anon)})
	share := id.CPU.Seconds() / id.Window.Seconds() * 100
	r.add(figure{Name: fmt.Sprintf("CPU over %s idle", id.Window), Value: id.CPU.Seconds(), Unit: "s", decimals: 2,
		Aim: "< 0.1 % of a core", Met: met(share < 0.1), Note: fmt.Sprintf("%.3f %% of a core (10 ms resolution)", share)})
}

func (r *report) binary(size int64) {
	v := float64(size) / (1 << 20)
	r.add(figure{Name: "Binary size, linux/arm GOARM=7, stripped", Value: v, Unit: "MiB", decimals: 1,
		Aim: "≤ 10 MiB", Met: met(v <= 10)})
}

func (r *report) wear(a ackResult) {
	r.add(figure{Name: "Flash wear per event, enqueue + delivery", Value: a.AgentBytesPerEvent / 1024, Unit: "KiB", decimals: 1,
		Floor: a.BareBytesPerUpdate / 1024, FloorIs: "one bare bbolt Update", Ratio: a.AgentBytesPerEvent / a.BareBytesPerUpdate,
		Aim: "≤ 32 KiB", Met: met(a.AgentBytesPerEvent <= 32<<10), Note: "write_bytes of /proc/<pid>/io"})
}

func (r *report) startup(bl backlogResult) {
	full, empty := quantile(bl.StartFull, 0.5), quantile(bl.StartEmpty, 0.5)
	r.add(figure{Name: fmt.Sprintf("Start-up, exec → READY=1 with %d pending (median of %d)", bl.Pending, len(bl.StartFull)),
		Value: ms(full), Unit: "ms", decimals: 0, Floor: ms(empty), FloorIs: "empty outbox", Ratio: float64(full) / float64(empty)})
}

// markdown renders the table.
func (r *report) markdown() string {
	var b strings.Builder
	dirty := ""
	if r.Dirty {
		dirty = " (uncommitted changes)"
	}
	fmt.Fprintf(&b, "Commit %.12s%s, %s, %d × %s, %s, %d MiB RAM, work dir on %s, %s.\n\n",
		r.Commit, dirty, r.Go, r.Nproc, r.Machine.CPU, r.Machine.Arch, r.Machine.MemMiB, r.Machine.FS, r.Date)
	b.WriteString("| Figure | Measured | Floor (same run) | Ratio | Aim | Met |\n")
	b.WriteString("|---|---|---|---|---|---|\n")
	for _, f := range r.Figures {
		val := fmt.Sprintf("%.*f %s", f.decimals, f.Value, f.Unit)
		if f.Note != "" {
			val += " (" + f.Note + ")"
		}
		floor, ratio, ok := "", "", ""
		if f.FloorIs != "" {
			floor = fmt.Sprintf("%.*f %s: %s", f.decimals, f.Floor, f.Unit, f.FloorIs)
		}
		if f.Ratio != 0 {
			ratio = fmt.Sprintf("%.2f×", f.Ratio)
		}
		if f.Met != nil {
			ok = "no"
			if *f.Met {
				ok = "yes"
			}
		}
		fmt.Fprintf(&b, "| %s | %s | %s | %s | %s | %s |\n", f.Name, val, floor, ratio, f.Aim, ok)
	}
	return b.String()
}
