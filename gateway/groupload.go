package gateway

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/mcpstream/mcpstream/schema"
	"github.com/mcpstream/mcpstream/streams"
)

// groupLoads admits calls per worker group: a call is refused at once when
// the wait it would have behind its group's backlog exceeds the group's
// queue target, so that a slow group's calls do not queue for seconds and
// do not take the in-flight room of the fast ones.
//
// The estimate comes from what every gateway hears on the groups' load
// subjects (schema.LoadReport): the replicas' handlers and mean run time,
// the backlog a saturated replica read from the consumers, and the calls
// each gateway admitted since. Between two backlog readings a gateway
// adds its own admissions at once, and the others' as its own times their
// fair share over its own (or, while it is asked for few calls itself, as
// they report them, and at the rate of their last report until the next);
// and it takes away what the handlers can have served in the meantime:
//
//	n    = backlog + admitted since (every gateway) - served since
//	wait = (n + 1 - handlers) * mean run time / handlers, when positive
//
// The fair shares are the group's service rate shared by max-min fairness
// over what each gateway was lately asked for (its admissions and its
// refusals, which the gateways report too): a gateway asked for less than
// an equal share gets what it asks for, the others split the rest
// equally. Every gateway thus fills the room a reading leaves in
// proportion to its share, and gateways that are all asked for more than
// the group can serve admit alike, whatever each admitted before.
//
// A group whose replicas report nothing (LoadInterval negative, or an
// older worker) is admitted as before.
type groupLoads struct {
	self     string        // this gateway's id
	interval time.Duration // how often load is reported
	target   time.Duration // the queue target of a group that sets none

	mu     sync.RWMutex
	groups map[string]*groupLoad
}

// groupLoad is what is known of one group's load.
type groupLoad struct {
	mu       sync.Mutex
	replicas map[string]replicaLoad
	// backlog is the last backlog measured (schema.BacklogNone: none
	// waited, the handlers busy are all there is), at backlogAt (when it
	// arrived).
	backlog   int64
	backlogAt time.Time
	// admitted counts the calls this gateway admitted since backlogAt,
	// others those the other gateways reported since; unreported those
	// this gateway has not reported yet.
	admitted, others, unreported int64
	// rates holds each other gateway's last report of admissions: the
	// rate it admitted at, and when the report arrived. Until its next,
	// it is taken to go on at that rate (for one report interval at
	// most): without it, a gateway would not know of a third of what
	// two others admit, at a report interval of 100 ms, and the group's
	// queue would grow past its target by as much.
	rates map[string]gatewayRate
	// asked is the calls this gateway was asked for (admitted and
	// refused) and asks each other gateway's as it reported them, decayed
	// with the time constant recentTau, as of askedAt and their own
	// times: the others' fair shares over this gateway's (fairRatio) is
	// how many calls the others admit for each of this gateway's.
	// Gateways that hear the same readings decide alike, so the others'
	// admissions since a reading are taken to be this gateway's times
	// that ratio at once, rather than as they report them a report
	// interval later: every gateway admitting into the same room for that
	// interval made the group's queue swing from empty to twice its
	// target. The ratio is of fair shares, not of what each admitted: by
	// what each admitted, a gateway that once admitted less kept
	// admitting less (three gateways asked alike settled at 65, 270 and
	// 435 calls a second).
	asked   float64
	askedAt time.Time
	asks    map[string]decaying
	// unreportedRefused counts the calls this gateway refused and has not
	// reported yet.
	unreportedRefused int64
	// bias multiplies the estimate so that nine admitted calls in ten
	// wait less than it (1 to start; see observe): what the reports cannot
	// see (calls on their way to the stream when a backlog was read, a
	// partition's backlog longer than the others', a gateway short of CPU)
	// is learnt from what the calls saw.
	bias float64
	// admittedTotal and refusedTotal count the calls this gateway
	// admitted and refused, for its metrics (groupCollector).
	admittedTotal, refusedTotal uint64
}

// replicaLoad is a replica's last report, and when it arrived.
type replicaLoad struct {
	rep schema.LoadReport
	at  time.Time
}

// decaying is a count decayed with the time constant recentTau, as of at.
type decaying struct {
	v  float64
	at time.Time
}

// add returns d decayed to now, plus n.
func (d decaying) add(n float64, now time.Time) decaying {
	return decaying{v: decayed(d.v, d.at, now) + n, at: now}
}

// gatewayRate is a gateway's last report of admissions to a group.
type gatewayRate struct {
	perNs float64 // calls admitted a nanosecond
	at    time.Time
}

// loadLife is how many report intervals a replica's report counts.
const loadLife = 5

func newGroupLoads(self string, interval, target time.Duration) *groupLoads {
	return &groupLoads{self: self, interval: interval, target: target, groups: map[string]*groupLoad{}}
}

// group returns group's load, made if needed.
func (l *groupLoads) group(name string) *groupLoad {
	l.mu.RLock()
	gl := l.groups[name]
	l.mu.RUnlock()
	if gl != nil {
		return gl
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if gl = l.groups[name]; gl == nil {
		gl = &groupLoad{replicas: map[string]replicaLoad{}, rates: map[string]gatewayRate{}, asks: map[string]decaying{}, backlog: schema.BacklogNone, bias: 1}
		l.groups[name] = gl
	}
	return gl
}

// heard takes in a load report that arrived at now.
func (l *groupLoads) heard(rep *schema.LoadReport, now time.Time) {
	if rep.Gateway == l.self {
		return
	}
	gl := l.group(rep.Group)
	gl.mu.Lock()
	defer gl.mu.Unlock()
	if rep.Gateway != "" {
		gl.others += rep.Admitted
		gl.rates[rep.Gateway] = gatewayRate{perNs: float64(rep.Admitted) / float64(l.interval), at: now}
		gl.asks[rep.Gateway] = gl.asks[rep.Gateway].add(float64(rep.Admitted+rep.Refused), now)
		return
	}
	gl.replicas[rep.Instance] = replicaLoad{rep: *rep, at: now}
	if rep.Backlog == schema.BacklogUnknown {
		return // the estimate goes on from the last reading
	}
	// A new reading, or none from a replica that never had all its
	// handlers busy since its last report: nothing waits, or it would
	// have taken it.
	gl.backlog, gl.backlogAt = max(rep.Backlog, schema.BacklogNone), now
	gl.admitted, gl.others = 0, 0
}

// admit decides on one call to group, whose tool's own queue target is
// toolTarget (0: none). It counts an admitted call and returns the wait it
// is expected to have; for a refused one, over is the wait beyond its
// target: try again after that.
func (l *groupLoads) admit(group string, toolTarget time.Duration, now time.Time) (wait, over time.Duration) {
	gl := l.group(group)
	gl.mu.Lock()
	defer gl.mu.Unlock()
	gl.asked, gl.askedAt = decayed(gl.asked, gl.askedAt, now)+1, now
	wait, target, underShare := gl.expectedWait(now, l.interval)
	target = firstPositive(toolTarget, target, l.target)
	if underShare {
		target = time.Duration(float64(target) * ownHeadroom)
	}
	if wait > target {
		gl.refusedTotal++
		gl.unreportedRefused++
		return 0, wait - target
	}
	gl.admittedTotal++
	gl.admitted++
	gl.unreported++
	return wait, 0
}

// observe tells group's estimate that a call expected to wait expected
// (its estimate, bias included) waited queued: its latency less its
// handler's run time. The bias tracks the biasQuantile of what calls
// waited over what was expected: it grows by biasRate when a call waited
// longer than expected and shrinks by a ninth of that otherwise, so that
// at rest one call in ten waits longer than its estimate, and refusing
// beyond the queue target keeps nine admitted calls in ten within it (a
// call's wait varies with its partition's backlog and the reports' age,
// which the group's mean cannot see). Calls expected to wait less than
// biasFloor teach nothing (their queueing is the gateway's and NATS's
// own), nor calls that waited biasOutlier longer than expected (a
// redelivery after a replica died, which takes the streams' AckWait).
// Only whether a call waited longer than expected counts, not by how
// much: with several gateways a call expected to wait 10 ms may wait 60
// (the other gateways' admissions since the last reading are an
// estimate), and it is those calls the bias must learn from. A nil
// groupLoads does nothing.
func (l *groupLoads) observe(group string, expected, queued time.Duration) {
	if l == nil || expected < biasFloor {
		return
	}
	gl := l.group(group)
	gl.mu.Lock()
	defer gl.mu.Unlock()
	switch {
	case queued-expected > biasOutlier:
		return
	case queued > expected: // expected is the biased estimate
		gl.bias *= 1 + biasRate
	default:
		gl.bias *= 1 - biasRate*(1-biasQuantile)/biasQuantile
	}
	gl.bias = min(max(gl.bias, biasMin), biasMax)
}

// The estimate's bias: the biasQuantile of waited over estimated, learnt
// in steps of biasRate, within biasMin and biasMax, from calls expected
// to wait biasFloor at least and that waited less than biasOutlier more
// than expected.
const (
	biasQuantile = 0.9
	biasRate     = 0.02
	biasMin      = 0.5
	biasMax      = 4
	biasFloor    = 5 * time.Millisecond
	biasOutlier  = time.Second
)

// firstPositive returns the first of ds that is positive.
func firstPositive(ds ...time.Duration) time.Duration {
	for _, d := range ds {
		if d > 0 {
			return d
		}
	}
	return 0
}

// expectedWait is estimate with the bias learnt from what calls saw: the
// wait admission decides on, and the one the metrics report.
func (gl *groupLoad) expectedWait(now time.Time, interval time.Duration) (wait, target time.Duration, underShare bool) {
	wait, target, underShare = gl.estimate(now, interval)
	return time.Duration(float64(wait) * gl.bias), target, underShare
}

// estimate returns the wait a call admitted now would have, the group's
// own queue target (0: none), and whether this gateway is asked for less
// than its fair share while others are asked for more (see othersSince);
// a zero wait when the replicas report nothing. interval is how often
// loads are reported: replicas' reports older than loadLife of them are
// forgotten, and a gateway's rate two intervals after its last report (it
// admits nothing any more, or is gone).
func (gl *groupLoad) estimate(now time.Time, interval time.Duration) (wait, target time.Duration, underShare bool) {
	life := interval * loadLife
	var handlers, busy int64
	var runNs float64
	for id, r := range gl.replicas {
		if now.Sub(r.at) > life {
			delete(gl.replicas, id)
			continue
		}
		if r.rep.ServiceNs <= 0 {
			continue // it ran nothing yet: its speed is unknown
		}
		handlers += int64(r.rep.Concurrency)
		busy += int64(r.rep.Busy)
		runNs += float64(r.rep.Concurrency) * float64(r.rep.ServiceNs)
		target = max(target, time.Duration(r.rep.QueueTargetNs))
	}
	if handlers == 0 {
		return 0, target, false
	}
	mean := runNs / float64(handlers) // ns, weighted by handlers
	n := float64(busy)
	if gl.backlog >= 0 && now.Sub(gl.backlogAt) <= life {
		n = float64(gl.backlog)
	}
	// The handlers busy meanwhile: those of the reading, and the calls
	// admitted since that found a free one.
	others, underShare := gl.othersSince(now, interval, float64(handlers)*float64(recentTau)/mean)
	arrived := float64(gl.admitted) + others
	served := math.Min(n+arrived, float64(handlers)) * float64(now.Sub(gl.backlogAt)) / mean
	n = math.Max(0, n+arrived-served)
	if ahead := n + 1 - float64(handlers); ahead > 0 {
		wait = time.Duration(ahead * mean / float64(handlers))
	}
	return wait, target, underShare
}

// othersSince returns what the other gateways admitted since the last
// backlog reading. By default, what they reported and, until they report
// the rest, what they admit at the rate of their last reports. When this
// gateway was asked for shareMin calls at least lately, the group's
// capacity (what it serves in recentTau) is shared by max-min fairness
// over what every gateway was asked for (fairRatio), and:
//
//   - asked for its share or more, this gateway takes the others to
//     admit, at once, its own admissions since the reading times their
//     shares over its own: they fill the room a reading leaves as it
//     does, in proportion;
//   - asked for less than its share while others are asked for more
//     (underShare), it takes the others to admit their shares of the
//     capacity, all of it but its own, steadily since the reading: its
//     own calls come too seldom to tell when the others fill the room.
//     Those others hold the group's queue at its target, and this
//     gateway's calls, which they leave room for, wait about that long:
//     they are admitted up to ownHeadroom times the target (see admit),
//     where against the target itself they would be refused on the edge
//     of the queue the others hold there.
func (gl *groupLoad) othersSince(now time.Time, interval time.Duration, capacity float64) (n float64, underShare bool) {
	n = float64(gl.others) + gl.unheard(now, interval)
	asked := decayed(gl.asked, gl.askedAt, now)
	if asked < shareMin {
		return n, false
	}
	var buf [16]float64 // on the stack for up to 16 other gateways
	others := buf[:0]
	for id, a := range gl.asks {
		v := decayed(a.v, a.at, now)
		if v < askedMin {
			delete(gl.asks, id) // it stopped, or is gone
			continue
		}
		others = append(others, v)
	}
	ratio, ownShare, underShare := fairRatio(asked, others, capacity)
	if underShare {
		return (capacity - ownShare) * float64(now.Sub(gl.backlogAt)) / float64(recentTau), true
	}
	return float64(gl.admitted) * ratio, false
}

// fairRatio shares capacity by max-min fairness over what own and others
// ask for (an ask below an equal share of what is left gets all it asks
// for, the rest share the remainder equally) and returns the others'
// shares over own's, own's share, and whether own asks for ownHeadroom
// times less than its share would give it while the others' asks exceed
// theirs (underShare). Without a capacity, or with room for everything
// asked, the shares are what each asks for.
func fairRatio(own float64, others []float64, capacity float64) (ratio, ownShare float64, underShare bool) {
	if own <= 0 {
		return 0, 0, false
	}
	total := own
	for _, v := range others {
		total += v
	}
	if capacity <= 0 || total <= capacity {
		return (total - own) / own, own, false
	}
	var buf [17]float64 // on the stack for up to 16 others
	asks := append(append(buf[:0], own), others...)
	slices.Sort(asks)
	left, level := capacity, 0.0
	for i, v := range asks {
		level = left / float64(len(asks)-i)
		if v > level {
			break // every ask from here on gets level
		}
		left -= v
	}
	ownShare = min(own, level)
	return (capacity - ownShare) / ownShare, ownShare, own*ownHeadroom < level
}

// ownHeadroom is how much more than what it asks for a gateway must have
// as its share to count as asked for less (underShare), and how far past
// the queue target it then admits its calls.
const ownHeadroom = 1.5

// decayed returns v, counted at at, decayed to now with the time constant
// recentTau.
func decayed(v float64, at, now time.Time) float64 {
	if v == 0 {
		return 0
	}
	return v * math.Exp(-float64(now.Sub(at))/float64(recentTau))
}

// What the gateways are asked for: counted over about recentTau; the
// others' fair shares are used once this gateway's own count reaches
// shareMin; a gateway whose count decayed below askedMin is forgotten.
const (
	recentTau = time.Second
	shareMin  = 10
	askedMin  = 0.5
)

// unheard returns what the other gateways admitted since their last
// reports (and since the last backlog reading, which counted what came
// before), at the rate of those reports, for one interval at most.
func (gl *groupLoad) unheard(now time.Time, interval time.Duration) float64 {
	var n float64
	for id, r := range gl.rates {
		if now.Sub(r.at) > 2*interval {
			delete(gl.rates, id)
			continue
		}
		since := min(now.Sub(r.at), now.Sub(gl.backlogAt), interval)
		n += r.perNs * float64(max(0, since))
	}
	return n
}

// report publishes, every interval until ctx ends, the calls this gateway
// admitted and refused to each group since its last report.
func (l *groupLoads) report(ctx context.Context, nc *nats.Conn) {
	t := time.NewTicker(l.interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-t.C:
			for _, rep := range l.unreported(now) {
				if b, err := rep.Marshal(); err == nil {
					_ = nc.Publish(streams.LoadSubject(rep.Group), b)
				}
			}
		}
	}
}

// unreported returns, and forgets, the calls this gateway admitted and
// refused to each group since the last call: a report a group that had
// any, made at now.
func (l *groupLoads) unreported(now time.Time) []schema.LoadReport {
	var reps []schema.LoadReport
	l.mu.RLock()
	defer l.mu.RUnlock()
	for name, gl := range l.groups {
		gl.mu.Lock()
		n, refused := gl.unreported, gl.unreportedRefused
		gl.unreported, gl.unreportedRefused = 0, 0
		gl.mu.Unlock()
		if n > 0 || refused > 0 {
			reps = append(reps, schema.LoadReport{Group: name, Gateway: l.self, At: now.UnixNano(), Admitted: n, Refused: refused})
		}
	}
	return reps
}

// listenLoads subscribes to every group's load reports, until Close.
func (g *Gateway) listenLoads() error {
	sub, err := g.nc.Subscribe(streams.LoadSubjects, func(m *nats.Msg) {
		rep, err := schema.UnmarshalLoadReport(m.Data)
		if err != nil {
			return
		}
		g.loads.heard(rep, time.Now())
	})
	if err != nil {
		return fmt.Errorf("subscribing to %s: %w", streams.LoadSubjects, err)
	}
	g.subs = append(g.subs, sub)
	return nil
}

// groupQueueReason is what a call refused by its group's queue target is
// told.
const groupQueueReason = "worker group queue target exceeded"

// withinGroupQueue admits x's call to group and returns the wait it is
// expected to have behind the group's backlog, or refuses it at once (HTTP
// 503 with Retry-After, -32000 naming the group, with retryAfterMs) and
// returns false: the call would wait longer than its queue target. now
// is when the call was admitted.
func (g *Gateway) withinGroupQueue(x *exchange, group string, toolTarget time.Duration, now time.Time) (time.Duration, bool) {
	if g.loads == nil {
		return 0, true
	}
	wait, over := g.loads.admit(group, toolTarget, now)
	if over == 0 {
		return wait, true
	}
	g.metrics.refused(refusedGroupQueue)
	ms := max(1, int(math.Ceil(float64(over)/float64(time.Millisecond))))
	if x.w != nil {
		x.w.Header().Set("Retry-After", strconv.Itoa(max(1, int(math.Ceil(over.Seconds())))))
	}
	data, _ := json.Marshal(struct {
		Reason       string `json:"reason"`
		Group        string `json:"group"`
		RetryAfterMs int    `json:"retryAfterMs"`
	}{groupQueueReason, group, ms})
	x.out.fail(http.StatusServiceUnavailable, &schema.Error{Code: schema.CodeOverloaded, Data: data,
		Message: fmt.Sprintf("server overloaded: worker group %s is behind; try again in %d ms", group, ms)})
	return 0, false
}

// loadInterval is how often a gateway reports the calls it admitted to
// each group: the workers' default report interval.
const loadInterval = 100 * time.Millisecond
