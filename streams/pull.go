package streams

// pullBudget is how many bytes of requests one reader of the request
// streams (a worker group's replica, a replay) asks the NATS server for at
// once, its partitions together: well below what the server lets wait on
// one connection (max_pending, 64 MiB by default; past it the server
// closes the connection as slow) and what nats.go lets wait on one
// subscription (64 MiB; past it, it drops messages).
const pullBudget = 16 << 20

// pullOverhead is room for a message's subject, headers and framing.
const pullOverhead = 64 << 10

// PullBytes is the byte limit of one pull from one of n request streams
// read at once, whose messages are at most maxMsg bytes (the streams'
// MaxMsgSize, or the connection's max payload): its share of the budget
// (16 MiB), or room for one message of maxMsg when that is more, so that
// no request is left behind the limit. With the default topology (4
// partitions, 8 MiB messages) that is 8 MiB and 64 KiB.
func PullBytes(maxMsg int64, n int) int {
	return int(max(pullBudget/int64(max(n, 1)), maxMsg+pullOverhead))
}
