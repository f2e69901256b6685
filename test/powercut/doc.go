// Package powercut is the power-cut suite: the static agent runs in a
// small VM (Debian's kernel under qemu, an initramfs holding the agent and
// an init of our own, test/powercut/vminit) with its outbox on an ext4
// file system on a virtual disk that the test serves over NBD.
//
// The disk (Disk) models a volatile write cache: a write is durable only
// once a flush (NBD_CMD_FLUSH) follows it or when it carries FUA. At a
// cut, qemu is killed with SIGKILL and the cached writes are lost: all of
// them, or (every other cut on average) a random subset of their 4 KiB
// blocks, as a disk whose cache reorders writes tears them. The next boot
// mounts the file system (replaying its journal) and lists the outbox
// with the agent's own `outbox export` before the agent starts.
//
// A simulated meter on the VM's second serial port (metersim over a unix
// socket) reports shifts back to back and records, as it happens, every
// sign-out answered 0x90 and every sign-in reported. After each cut every
// answered sign-out, and every sign-in reported more than a second before
// the cut (a standard meter expects no answer to it), must be listed;
// lost events, duplicate records and outboxes set aside are counted.
//
// Mutants prove the suite can fail: bbolt's NoSync (build tag
// powercut_mutant_nosync), the meter answered before the commit
// (powercut_mutant_ackfirst), and ext4 mounted nobarrier (a mount option).
// The production build has neither tag.
//
// On demand only (qemu under software emulation takes tens of seconds a
// cut): scripts/powercut.sh N runs the mutants, then N cuts. Plain
// `go test ./...` skips it.
package powercut
