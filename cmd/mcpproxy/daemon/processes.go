package daemon

import (
	"github.com/asynkron/protoactor-go/actor"
	cmap "github.com/orcaman/concurrent-map"
)

// processBuckets is how many lock-striped maps the actor system's process table gets.
// protoactor makes 1024, each of 32 shards with its own map and lock: 32,768 maps, about
// 4.5 MB of heap (and twice that of RSS once the collector's headroom is counted) for a
// daemon that runs a few hundred actors. 32 buckets still give 1,024 locks.
const processBuckets = 32

// shrinkProcessTable replaces the actor system's process table with one of processBuckets
// buckets, moving over what the system registered while it was made (its event stream and
// dead-letter processes). It runs before anything is spawned; lookups only ever go through
// SliceMap.GetBucket, which hashes into however many buckets there are.
func shrinkProcessTable(sys *actor.ActorSystem) {
	old := sys.ProcessRegistry.LocalPIDs
	table := &actor.SliceMap{LocalPIDs: make([]cmap.ConcurrentMap, processBuckets)}
	for i := range table.LocalPIDs {
		table.LocalPIDs[i] = cmap.New()
	}
	// IterCb, not Items: Items starts a goroutine per shard (32,768 here), and a goroutine's
	// descriptor is never freed.
	for _, bucket := range old.LocalPIDs {
		bucket.IterCb(func(id string, p interface{}) { table.GetBucket(id).Set(id, p) })
	}
	sys.ProcessRegistry.LocalPIDs = table
}
