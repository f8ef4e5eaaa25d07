// Package regdb keeps a Map-Server's registrations in a bbolt file, so
// that after a restart (clean or not) it answers from them at once while
// the ETRs register again. It implements regstore.Journal: the stores
// report every change on the event loop, regdb collects them in memory and
// writes them behind, in one transaction (one fsync) per flush interval
// however many registrations changed; a registration changed many times in
// an interval is written once. A kill loses at most the changes of the
// last interval: the ETRs' next round restores them.
//
// The file holds one bucket per store and a bucket "rloc" whose "format"
// names the layout; a bbolt file without it (another program's), a file
// that is not a bbolt database or one that is damaged is refused with an
// error naming the file.
package regdb

import (
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"time"

	bolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"

	"github.com/rloc-router/rloc/slowpath/regstore"
)

// Format is the layout this package writes and reads.
const Format = "rloc-registrations/1"

// DefaultInterval is how often changes are written by default.
const DefaultInterval = time.Second

// The bucket and key of the format mark.
const (
	metaBucket = "rloc"
	formatKey  = "format"
)

// ErrForeign: the file is a bbolt database of another program or layout.
var ErrForeign = errors.New("not an rloc registration state file")

// DB is an open state file.
type DB struct {
	path string
	db   *bolt.DB
	log  *slog.Logger

	mu    sync.Mutex
	dirty map[string]map[string][]byte // bucket → key → value, nil: delete
	err   error                        // the last write's error, logged once
	stats Stats

	stop chan struct{}
	done chan struct{}
	once sync.Once
}

// Open opens (creating it when missing) the state file at path and starts
// writing behind every interval (0: DefaultInterval). log receives write
// errors (nil discards them).
func Open(path string, interval time.Duration, log *slog.Logger) (d *DB, err error) {
	if interval <= 0 {
		interval = DefaultInterval
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	defer func() {
		// bbolt checks what it reads; a damaged page it did not check must
		// not take the daemon down at start-up.
		if p := recover(); p != nil {
			err = fmt.Errorf("state file %s: damaged: %v", path, p)
		}
	}()
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: time.Second})
	if err != nil {
		return nil, fmt.Errorf("state file %s: %w", path, err)
	}
	if err := db.Update(initMeta); err != nil {
		db.Close()
		return nil, fmt.Errorf("state file %s: %w", path, err)
	}
	d = &DB{path: path, db: db, log: log, dirty: map[string]map[string][]byte{},
		stop: make(chan struct{}), done: make(chan struct{})}
	go d.run(interval)
	return d, nil
}

// initMeta checks the format of a used file and marks a new one.
func initMeta(tx *bolt.Tx) error {
	if m := tx.Bucket([]byte(metaBucket)); m != nil {
		if f := m.Get([]byte(formatKey)); string(f) != Format {
			return fmt.Errorf("%w: format %q, want %q", ErrForeign, f, Format)
		}
		return nil
	}
	var other []byte
	_ = tx.ForEach(func(name []byte, _ *bolt.Bucket) error {
		other = name
		return errors.New("stop")
	})
	if other != nil {
		return fmt.Errorf("%w: it has a bucket %q and no format mark", ErrForeign, other)
	}
	m, err := tx.CreateBucket([]byte(metaBucket))
	if err != nil {
		return err
	}
	return m.Put([]byte(formatKey), []byte(Format))
}

// Stats counts a state file's writes.
type Stats struct {
	// Flushes counts the transactions written, Errors those that failed;
	// Written counts the registrations written or deleted by them.
	Flushes, Errors, Written uint64
}

// Stats returns the counters.
func (d *DB) Stats() Stats {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.stats
}

// Path returns the file's path.
func (d *DB) Path() string { return d.path }

// Load returns what bucket holds (a store's registrations), in key order.
func (d *DB) Load(bucket string) (out []regstore.Saved, err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("state file %s: damaged: %v", d.path, p)
		}
	}()
	err = d.db.View(func(tx *bolt.Tx) error {
		b := tx.Bucket([]byte(bucket))
		if b == nil {
			return nil
		}
		return b.ForEach(func(k, v []byte) error {
			var s regstore.Saved
			if err := json.Unmarshal(v, &s); err != nil {
				return fmt.Errorf("bucket %s: a registration does not decode: %w", bucket, err)
			}
			out = append(out, s)
			return nil
		})
	})
	if err != nil {
		return nil, fmt.Errorf("state file %s: %w", d.path, err)
	}
	return out, nil
}

// Journal returns the journal of one store, kept in bucket.
func (d *DB) Journal(bucket string) regstore.Journal { return journal{d, bucket} }

type journal struct {
	d      *DB
	bucket string
}

func (j journal) Save(key []byte, s *regstore.Saved) {
	v, err := json.Marshal(s)
	if err != nil {
		return
	}
	j.d.put(j.bucket, key, v)
}

func (j journal) Delete(key []byte) { j.d.put(j.bucket, key, nil) }

// put notes a change to write with the next flush.
func (d *DB) put(bucket string, key, v []byte) {
	d.mu.Lock()
	defer d.mu.Unlock()
	m := d.dirty[bucket]
	if m == nil {
		m = map[string][]byte{}
		d.dirty[bucket] = m
	}
	m[string(key)] = v
}

// Pending returns how many changes wait for the next flush.
func (d *DB) Pending() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	n := 0
	for _, m := range d.dirty {
		n += len(m)
	}
	return n
}

// run flushes every interval until Close.
func (d *DB) run(interval time.Duration) {
	defer close(d.done)
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-d.stop:
			return
		case <-t.C:
			d.flushLogged()
		}
	}
}

// flushLogged flushes and logs a write error once until writes succeed.
func (d *DB) flushLogged() {
	err := d.Flush()
	d.mu.Lock()
	defer d.mu.Unlock()
	switch {
	case err != nil && d.err == nil:
		d.log.Error("cannot write the registration state file", "file", d.path, "err", err)
	case err == nil && d.err != nil:
		d.log.Info("registration state file written again", "file", d.path)
	}
	d.err = err
}

// Flush writes the pending changes in one transaction. Changes that could
// not be written are kept for the next flush unless newer ones replaced
// them.
func (d *DB) Flush() error {
	d.mu.Lock()
	batch := d.dirty
	d.dirty = map[string]map[string][]byte{}
	d.mu.Unlock()
	if len(batch) == 0 {
		return nil
	}
	err := d.db.Update(func(tx *bolt.Tx) error {
		for name, m := range batch {
			b, err := tx.CreateBucketIfNotExists([]byte(name))
			if err != nil {
				return err
			}
			for k, v := range m {
				if v == nil {
					err = b.Delete([]byte(k))
				} else {
					err = b.Put([]byte(k), v)
				}
				if err != nil {
					return err
				}
			}
		}
		return nil
	})
	d.mu.Lock()
	defer d.mu.Unlock()
	if err == nil {
		d.stats.Flushes++
		for _, m := range batch {
			d.stats.Written += uint64(len(m))
		}
	} else {
		d.stats.Errors++
		for name, m := range batch {
			cur := d.dirty[name]
			if cur == nil {
				d.dirty[name] = m
				continue
			}
			for k, v := range m {
				if _, newer := cur[k]; !newer {
					cur[k] = v
				}
			}
		}
	}
	return err
}

// Close writes what is pending and closes the file.
func (d *DB) Close() error {
	var err error
	d.once.Do(func() {
		close(d.stop)
		<-d.done
		err = d.Flush()
		if cerr := d.db.Close(); err == nil {
			err = cerr
		}
	})
	return err
}

// Check tells whether Open would refuse the file at path, without
// changing it (rlocd --check): a missing file is fine when its directory
// exists (it will be created), and one that another process holds open
// (the running rlocd) is taken as fine.
func Check(path string) (err error) {
	if _, serr := os.Stat(path); errors.Is(serr, os.ErrNotExist) {
		if _, derr := os.Stat(filepath.Dir(path)); derr != nil {
			return fmt.Errorf("state file %s: %w", path, derr)
		}
		return nil
	}
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("state file %s: damaged: %v", path, p)
		}
	}()
	db, err := bolt.Open(path, 0o600, &bolt.Options{ReadOnly: true, Timeout: 200 * time.Millisecond})
	if errors.Is(err, berrors.ErrTimeout) {
		return nil // locked by the running daemon, which opened it
	}
	if err != nil {
		return fmt.Errorf("state file %s: %w", path, err)
	}
	defer db.Close()
	err = db.View(func(tx *bolt.Tx) error {
		m := tx.Bucket([]byte(metaBucket))
		if m == nil {
			if isEmpty(tx) {
				return nil // created, never marked: Open marks it
			}
			return fmt.Errorf("%w: no format mark", ErrForeign)
		}
		if f := m.Get([]byte(formatKey)); string(f) != Format {
			return fmt.Errorf("%w: format %q, want %q", ErrForeign, f, Format)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("state file %s: %w", path, err)
	}
	return nil
}

// isEmpty reports whether tx's database has no bucket.
func isEmpty(tx *bolt.Tx) bool {
	empty := true
	_ = tx.ForEach(func([]byte, *bolt.Bucket) error { empty = false; return errors.New("stop") })
	return empty
}
