import Foundation

/// What the daemon does to a server at a boundary.
public enum ScheduleAction: String, Sendable, Codable {
    /// Start the server.
    case start
    /// Stop the server.
    case stop
}

/// An instant at which a schedule starts or stops its servers.
public struct ScheduleBoundary: Sendable, Hashable, Comparable, CustomStringConvertible {
    /// The instant.
    public var date: Date
    /// What happens at that instant.
    public var action: ScheduleAction

    /// Creates a boundary.
    public init(date: Date, action: ScheduleAction) {
        self.date = date
        self.action = action
    }

    /// Chronological; at the same instant a stop sorts before a start, so that applying boundaries
    /// in order leaves the state a start implies.
    public static func < (lhs: ScheduleBoundary, rhs: ScheduleBoundary) -> Bool {
        if lhs.date != rhs.date { return lhs.date < rhs.date }
        return lhs.action == .stop && rhs.action == .start
    }

    /// E.g. `"start@2026-03-02T07:00:00Z"`.
    public var description: String { "\(action.rawValue)@\(date.formatted(.iso8601))" }
}

/// The state a schedule wants its servers in at an instant.
public enum DesiredState: String, Sendable {
    /// Inside a running window.
    case running
    /// Outside every running window of a schedule that has at least one.
    case stopped
    /// The schedule has no complete (start and stop) periods, so it only has lone boundaries.
    case undefined
}

/// Pure evaluation of a ``Schedule``: boundaries, running windows and desired state.
///
/// Nothing here reads the clock; every function takes the instant. Local times are interpreted in
/// the schedule's time zone with the proleptic Gregorian calendar:
///
/// - A local time that does not exist (spring-forward gap) resolves to the first instant after the
///   gap (e.g. 02:30 → 03:00 local).
/// - A local time that occurs twice (fall-back) resolves to its first occurrence.
/// - A window starts on a day its ``DaySelector`` matches and that is not a skip date; an overnight
///   window ends on the next calendar day regardless of that day.
/// - The running windows of all complete periods are united: overlapping or touching windows
///   form one window, with one start and one stop boundary. Lone start/stop boundaries are added
///   as they are. A window that resolves to zero length (both ends inside one DST gap) is dropped.
/// - Periods that ``SchedulePeriod/validate()`` rejects are ignored, and so are invalid skip dates.
///
/// Work is proportional to the number of local days examined times the number of periods; there
/// is no per-minute iteration.
public struct ScheduleEvaluator: Sendable {
    /// The schedule being evaluated.
    public let schedule: Schedule

    private let windowPeriods: [CompiledPeriod]
    private let lonePeriods: [CompiledPeriod]
    private let skipDays: Set<Int>

    private struct CompiledPeriod: Sendable {
        var days: DaySelector
        var start: Int?
        var stop: Int?
    }

    /// A window in whole seconds since 1970, `[start, end)`.
    private struct Window {
        var start: Int
        var end: Int
    }

    private static let secondsPerDay = 86_400
    private static let searchHorizon: TimeInterval = 400 * 86_400

    /// Creates an evaluator for `schedule`.
    public init(schedule: Schedule) {
        self.schedule = schedule
        let valid = schedule.periods.filter { $0.validate().isEmpty }
            .map { CompiledPeriod(days: $0.days, start: $0.start?.minutes, stop: $0.stop?.minutes) }
        windowPeriods = valid.filter { $0.start != nil && $0.stop != nil }
        lonePeriods = valid.filter { ($0.start == nil) != ($0.stop == nil) }
        skipDays = Set(schedule.skipDates.filter(\.isValid).map(\.daysSinceEpoch))
    }

    /// Whether the schedule has at least one valid period with both a start and a stop.
    public var hasCompleteWindows: Bool { !windowPeriods.isEmpty }

    // MARK: Public evaluation

    /// All start/stop boundaries with `from < date <= to`, sorted; for stop-only schedules only
    /// stops, start-only only starts. Empty unless `from < to`.
    public func boundaries(after from: Date, through to: Date) -> [ScheduleBoundary] {
        guard from < to else { return [] }
        let lower = from.timeIntervalSince1970
        let upper = to.timeIntervalSince1970
        // Windows starting two days before `from` cannot reach it (a window is shorter than a day
        // plus a DST shift), and none starting after the day of `to` can begin at or before it.
        let days = (localDay(of: from) - 2)...(localDay(of: to) + 1)
        var result: [ScheduleBoundary] = []
        func add(_ seconds: Int, _ action: ScheduleAction) {
            let instant = TimeInterval(seconds)
            guard instant > lower, instant <= upper, schedule.mode.allows(action) else { return }
            result.append(ScheduleBoundary(date: Date(timeIntervalSince1970: instant), action: action))
        }
        for window in mergedWindows(days: days) {
            add(window.start, .start)
            add(window.end, .stop)
        }
        for day in days where !skipDays.contains(day) {
            let date = LocalDate(daysSinceEpoch: day)
            for period in lonePeriods where period.days.matches(date) {
                if let start = period.start { add(instantSeconds(day: day, minute: start), .start) }
                if let stop = period.stop { add(instantSeconds(day: day, minute: stop), .stop) }
            }
        }
        result.sort()
        var unique: [ScheduleBoundary] = []
        unique.reserveCapacity(result.count)
        for boundary in result where unique.last != boundary {
            unique.append(boundary)
        }
        return unique
    }

    /// The first boundary strictly after `date` (searching up to 400 days ahead), or `nil`.
    public func nextBoundary(after date: Date) -> ScheduleBoundary? {
        let limit = date.addingTimeInterval(Self.searchHorizon)
        var lower = date
        var chunk: TimeInterval = 2 * 86_400
        while lower < limit {
            let upper = min(lower.addingTimeInterval(chunk), limit)
            if let first = boundaries(after: lower, through: upper).first { return first }
            lower = upper
            chunk = 31 * 86_400
        }
        return nil
    }

    /// The latest boundary at or before `date` (searching up to 400 days back), or `nil`.
    public func lastBoundary(atOrBefore date: Date) -> ScheduleBoundary? {
        let limit = date.addingTimeInterval(-Self.searchHorizon)
        var upper = date
        var chunk: TimeInterval = 2 * 86_400
        while upper > limit {
            let lower = max(upper.addingTimeInterval(-chunk), limit)
            if let last = boundaries(after: lower, through: upper).last { return last }
            upper = lower
            chunk = 31 * 86_400
        }
        return nil
    }

    /// `running` if `date` lies inside a window `[start, stop)` of a period that has both ends,
    /// `stopped` if the schedule has at least one complete window and `date` lies in none,
    /// `undefined` otherwise. Independent of ``Schedule/mode`` (see ``desiredAction(at:)``).
    public func desiredState(at date: Date) -> DesiredState {
        guard hasCompleteWindows else { return .undefined }
        let day = localDay(of: date)
        let instant = date.timeIntervalSince1970
        for window in rawWindows(days: (day - 2)...day)
        where TimeInterval(window.start) <= instant && instant < TimeInterval(window.end) {
            return .running
        }
        return .stopped
    }

    /// The action that converges a server to ``desiredState(at:)`` when the schedule's mode permits
    /// it (for the `enforce` policy): `.start` when running is desired, `.stop` when stopped is,
    /// `nil` when the state is undefined or the mode forbids the action.
    public func desiredAction(at date: Date) -> ScheduleAction? {
        let action: ScheduleAction
        switch desiredState(at: date) {
        case .running: action = .start
        case .stopped: action = .stop
        case .undefined: return nil
        }
        return schedule.mode.allows(action) ? action : nil
    }

    /// The running windows overlapping `[from, to)`, for previews: united as described on the
    /// type, sorted and not clipped to the range. Windows that chain into each other indefinitely
    /// are cut at about two days beyond the range. Empty unless `from < to`.
    public func windows(from: Date, to: Date) -> [DateInterval] {
        guard from < to else { return [] }
        let lower = from.timeIntervalSince1970
        let upper = to.timeIntervalSince1970
        let days = (localDay(of: from) - 2)...(localDay(of: to) + 1)
        return mergedWindows(days: days)
            .filter { TimeInterval($0.start) < upper && TimeInterval($0.end) > lower }
            .map {
                DateInterval(
                    start: Date(timeIntervalSince1970: TimeInterval($0.start)),
                    end: Date(timeIntervalSince1970: TimeInterval($0.end)))
            }
    }

    // MARK: Local time

    /// The local calendar date of `date` in the schedule's time zone.
    public func localDate(of date: Date) -> LocalDate {
        LocalDate(daysSinceEpoch: localDay(of: date))
    }

    /// The instant at which local time `time` occurs on `date` in the schedule's time zone: the
    /// first occurrence if it occurs twice, the first instant after the gap if it does not exist.
    public func instant(on date: LocalDate, at time: MinuteOfDay) -> Date {
        Date(timeIntervalSince1970: TimeInterval(instantSeconds(day: date.daysSinceEpoch, minute: time.minutes)))
    }

    private func offset(at seconds: Int) -> Int {
        schedule.timeZone.secondsFromGMT(for: Date(timeIntervalSince1970: TimeInterval(seconds)))
    }

    /// Days since 1970-01-01 of the local date of `date`.
    private func localDay(of date: Date) -> Int {
        let seconds = Self.wholeSeconds(date)
        return floorDivide(seconds + offset(at: seconds), Self.secondsPerDay)
    }

    /// `date` floored to whole seconds, clamped to a range that cannot overflow.
    private static func wholeSeconds(_ date: Date) -> Int {
        let limit: TimeInterval = 1e13  // about 316,000 years
        let value = date.timeIntervalSince1970
        guard value.isFinite else { return value > 0 ? Int(limit) : -Int(limit) }
        return Int(min(max(value, -limit), limit).rounded(.down))
    }

    /// Seconds since 1970 at which local minute `minute` of local day `day` occurs.
    private func instantSeconds(day: Int, minute: Int) -> Int {
        // The wall-clock reading expressed as if it were UTC.
        let local = day * Self.secondsPerDay + minute * 60
        // Offsets in force around that reading (real instants lie within ±14 h of it).
        var offsets: [Int] = []
        for probe in [local - Self.secondsPerDay, local, local + Self.secondsPerDay] {
            let value = offset(at: probe)
            if !offsets.contains(value) { offsets.append(value) }
        }
        // Every offset that maps the reading onto an instant where that offset applies is an
        // occurrence; the earliest one wins (fall-back repeats).
        var earliest: Int?
        for candidate in offsets {
            let instant = local - candidate
            if offset(at: instant) == candidate, instant < (earliest ?? Int.max) {
                earliest = instant
            }
        }
        if let earliest { return earliest }
        // No occurrence: the reading falls in a gap. The transition lies between the readings
        // under the largest and the smallest offset; the first instant after the gap is the
        // transition itself.
        guard let largest = offsets.max(), let smallest = offsets.min() else { return local }
        var before = local - largest
        var after = local - smallest
        let offsetBefore = offset(at: before)
        guard before < after, offset(at: after) != offsetBefore else {
            return local - offset(at: local)
        }
        while after - before > 1 {
            let middle = before + (after - before) / 2
            if offset(at: middle) == offsetBefore { before = middle } else { after = middle }
        }
        return after
    }

    // MARK: Windows

    /// The windows of complete periods starting on local days `days`, unsorted and not united.
    private func rawWindows(days: ClosedRange<Int>) -> [Window] {
        var windows: [Window] = []
        guard !windowPeriods.isEmpty else { return windows }
        for day in days where !skipDays.contains(day) {
            let date = LocalDate(daysSinceEpoch: day)
            for period in windowPeriods where period.days.matches(date) {
                guard let start = period.start, let stop = period.stop else { continue }
                let begin = instantSeconds(day: day, minute: start)
                let end = instantSeconds(day: stop <= start ? day + 1 : day, minute: stop)
                if begin < end { windows.append(Window(start: begin, end: end)) }
            }
        }
        return windows
    }

    /// The windows starting on local days `days`, sorted, with overlapping or touching ones united.
    private func mergedWindows(days: ClosedRange<Int>) -> [Window] {
        let sorted = rawWindows(days: days).sorted { $0.start < $1.start }
        var merged: [Window] = []
        for window in sorted {
            if let last = merged.last, window.start <= last.end {
                merged[merged.count - 1].end = max(last.end, window.end)
            } else {
                merged.append(window)
            }
        }
        return merged
    }
}

/// `a / b` rounded toward negative infinity (for `b > 0`).
private func floorDivide(_ a: Int, _ b: Int) -> Int {
    let quotient = a / b
    return (a % b != 0 && (a < 0) != (b < 0)) ? quotient - 1 : quotient
}
