import Foundation

/// Simulated time: wall-clock time scaled by a speed factor, plus manual jumps.
///
/// At speed 1 the simulated clock follows the wall clock; at speed 3600 a simulated hour passes in a
/// second; at speed 0 time moves only when a test advances it.
public struct SimClock: Sendable {
    private var anchorReal: ContinuousClock.Instant
    private var anchorSim: Double
    public private(set) var speed: Double

    /// Starts at `start` (Unix seconds; default: now) running at `speed`.
    public init(start: Double = Date().timeIntervalSince1970, speed: Double = 1) {
        self.anchorReal = ContinuousClock.now
        self.anchorSim = start
        self.speed = max(0, speed)
    }

    /// The simulated time in Unix seconds.
    public func now() -> Double {
        let elapsed = ContinuousClock.now - anchorReal
        let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
        return anchorSim + seconds * speed
    }

    /// Changes the speed from now on.
    public mutating func setSpeed(_ newSpeed: Double) {
        anchorSim = now()
        anchorReal = ContinuousClock.now
        speed = max(0, newSpeed)
    }

    /// Jumps forward by `seconds` of simulated time.
    public mutating func advance(by seconds: Double) {
        anchorSim += max(0, seconds)
    }
}

/// A min-heap of timed events, ordered by due time then insertion order.
struct EventQueue<Event: Sendable>: Sendable {
    private var heap: [(due: Double, sequence: Int, event: Event)] = []
    private var sequence = 0

    var count: Int { heap.count }
    var nextDue: Double? { heap.first?.due }

    mutating func push(_ event: Event, due: Double) {
        sequence += 1
        heap.append((due, sequence, event))
        var child = heap.count - 1
        while child > 0 {
            let parent = (child - 1) / 2
            guard less(child, parent) else { break }
            heap.swapAt(child, parent)
            child = parent
        }
    }

    /// Removes and returns the earliest event due at or before `time`.
    mutating func popDue(at time: Double) -> (due: Double, event: Event)? {
        guard let first = heap.first, first.due <= time else { return nil }
        let last = heap.removeLast()
        if !heap.isEmpty {
            heap[0] = last
            var parent = 0
            while true {
                let left = 2 * parent + 1
                let right = left + 1
                var smallest = parent
                if left < heap.count, less(left, smallest) { smallest = left }
                if right < heap.count, less(right, smallest) { smallest = right }
                if smallest == parent { break }
                heap.swapAt(parent, smallest)
                parent = smallest
            }
        }
        return (first.due, first.event)
    }

    private func less(_ a: Int, _ b: Int) -> Bool {
        heap[a].due < heap[b].due || (heap[a].due == heap[b].due && heap[a].sequence < heap[b].sequence)
    }
}

/// A SplitMix64 generator: fleets are reproducible from a seed.
public struct SeededGenerator: RandomNumberGenerator, Sendable {
    private var state: UInt64

    public init(seed: UInt64) {
        state = seed
    }

    public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    /// A random UUID string (version 4 layout).
    public mutating func uuid() -> String {
        var high = next()
        var low = next()
        high = (high & ~0xF000) | 0x4000  // version 4
        low = (low & 0x3FFF_FFFF_FFFF_FFFF) | 0x8000_0000_0000_0000  // variant
        var out = [UInt8]()
        out.reserveCapacity(36)
        FleetGenerator.appendHex(high, digits: 16, to: &out)
        FleetGenerator.appendHex(low, digits: 16, to: &out)
        for position in [8, 13, 18, 23] { out.insert(UInt8(ascii: "-"), at: position) }
        return String(decoding: out, as: UTF8.self)
    }

    /// 32 lower-case hex characters (job ids, project ids).
    public mutating func hex32() -> String {
        var out = [UInt8]()
        out.reserveCapacity(32)
        FleetGenerator.appendHex(next(), digits: 16, to: &out)
        FleetGenerator.appendHex(next(), digits: 16, to: &out)
        return String(decoding: out, as: UTF8.self)
    }
}
