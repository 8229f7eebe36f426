package daemon

import cmap "github.com/orcaman/concurrent-map"

// protoactor's process registry is 1,024 concurrent maps (orcaman/concurrent-map) of
// cmap.SHARD_COUNT shards each, 32 by default: 32,768 Go maps and locks, about 2 MB of an
// idle daemon's heap (and twice that of its RSS, which follows the collector's goal) for
// the few hundred actors it runs. The registry's 1,024 buckets already spread the PIDs by
// hash, so one shard each keeps a lock per bucket. Set in init, before any actor system
// exists and before any goroutine could read it; nothing else here uses the package.
func init() { cmap.SHARD_COUNT = 1 }
