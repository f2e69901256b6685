// Package outbox is the agent's durable store-and-forward queue of driver
// sign-in and sign-out events, one bbolt file.
//
// An event the meter was told is stored is never lost: Enqueue returns only
// after bbolt's fsync'd commit, ids are big-endian sequence keys in arrival
// order, and the uploader moves a record from pending to delivered (kept
// for a retention period, then pruned) or to dead (kept until a technician
// retries or purges it), each step durable before it returns. A re-sent
// frame with the same identity is stored once. The file is bounded by a
// maximum size; when it is full, delivered records are pruned first and
// then Enqueue fails with ErrFull, never dropping what is stored. A corrupt
// file is moved aside and a fresh one started, so the daemon never
// crash-loops on it; a file locked by a running daemon is refused with
// ErrLocked.
//
// The layout of the file is described in schema.go, the record encoding in
// codec.go, and the measurements behind the bbolt options in README.md.
package outbox
