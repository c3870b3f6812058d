import Foundation

// MARK: - MinuteOfDay

/// A wall-clock time of day with minute precision, e.g. `07:30`.
///
/// The value is a local time: it is interpreted in a schedule's time zone by
/// ``ScheduleEvaluator``. Encoded (`Codable`) as the string `"HH:mm"`.
public struct MinuteOfDay: Sendable, Hashable, Comparable, Codable, CustomStringConvertible {
    /// Minutes since local midnight; valid values are `0..<1440`.
    ///
    /// The property is mutable for convenience; a value outside `0..<1440` is reported by
    /// ``Schedule/validate()`` and the period holding it is ignored by the evaluator.
    public var minutes: Int

    /// Creates a time from minutes since midnight; `nil` unless `minutes` is in `0..<1440`.
    public init?(minutes: Int) {
        guard (0..<1440).contains(minutes) else { return nil }
        self.minutes = minutes
    }

    /// Creates a time from an hour (`0...23`) and a minute (`0...59`); `nil` if either is out of range.
    public init?(hour: Int, minute: Int) {
        guard (0..<24).contains(hour), (0..<60).contains(minute) else { return nil }
        self.minutes = hour * 60 + minute
    }

    /// Parses `"H:mm"` or `"HH:mm"` (24-hour clock), e.g. `"07:30"`, `"7:30"`, `"19:05"`.
    ///
    /// Surrounding spaces are ignored. Returns `nil` for anything else, including
    /// `"24:00"`, `"7:60"`, `"7:5"`, `"+7:30"` and `"0730"`.
    public init?(parsing text: String) {
        let parts = text.trimmingCharacters(in: .whitespaces)
            .split(separator: ":", omittingEmptySubsequences: false)
        guard parts.count == 2,
              (1...2).contains(parts[0].count), parts[1].count == 2,
              let hour = asciiNumber(parts[0]), let minute = asciiNumber(parts[1])
        else { return nil }
        self.init(hour: hour, minute: minute)
    }

    /// The hour component, `0...23` for a valid value.
    public var hour: Int { minutes / 60 }

    /// The minute component, `0...59` for a valid value.
    public var minute: Int { minutes % 60 }

    /// Whether ``minutes`` lies in `0..<1440`.
    public var isValid: Bool { (0..<1440).contains(minutes) }

    /// The time as `"HH:mm"`, e.g. `"07:30"`.
    public var description: String { "\(twoDigits(hour)):\(twoDigits(minute))" }

    /// Orders times by minutes since midnight.
    public static func < (lhs: MinuteOfDay, rhs: MinuteOfDay) -> Bool { lhs.minutes < rhs.minutes }

    /// Decodes from a `"HH:mm"` string (see ``init(parsing:)``).
    public init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        let text = try container.decode(String.self)
        guard let value = MinuteOfDay(parsing: text) else {
            throw DecodingError.dataCorruptedError(
                in: container, debugDescription: "expected a time of day like \"07:30\", got \"\(text)\"")
        }
        self = value
    }

    /// Encodes as a `"HH:mm"` string.
    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(description)
    }
}

// MARK: - Weekday

/// A day of the week, numbered like `Calendar.Component.weekday` (Sunday = 1 … Saturday = 7).
public enum Weekday: Int, Sendable, Hashable, Codable, CaseIterable, Comparable {
    /// Sunday (1).
    case sunday = 1
    /// Monday (2).
    case monday
    /// Tuesday (3).
    case tuesday
    /// Wednesday (4).
    case wednesday
    /// Thursday (5).
    case thursday
    /// Friday (6).
    case friday
    /// Saturday (7).
    case saturday

    /// Parses an English day name, case-insensitively: the full name (`"monday"`), the
    /// three-letter abbreviation (`"Mon"`), or the common `"tues"`, `"weds"`, `"thur"`, `"thurs"`.
    /// Returns `nil` for anything else (e.g. `"funday"`, `"mo"`).
    public init?(parsing text: String) {
        switch text.trimmingCharacters(in: .whitespaces).lowercased() {
        case "sun", "sunday": self = .sunday
        case "mon", "monday": self = .monday
        case "tue", "tues", "tuesday": self = .tuesday
        case "wed", "weds", "wednesday": self = .wednesday
        case "thu", "thur", "thurs", "thursday": self = .thursday
        case "fri", "friday": self = .friday
        case "sat", "saturday": self = .saturday
        default: return nil
        }
    }

    /// The lower-case three-letter abbreviation, e.g. `"mon"`.
    public var shortName: String {
        switch self {
        case .sunday: "sun"
        case .monday: "mon"
        case .tuesday: "tue"
        case .wednesday: "wed"
        case .thursday: "thu"
        case .friday: "fri"
        case .saturday: "sat"
        }
    }

    /// Monday to Friday.
    public static let workdays: Set<Weekday> = [.monday, .tuesday, .wednesday, .thursday, .friday]

    /// Orders by `Calendar` numbering (Sunday first).
    public static func < (lhs: Weekday, rhs: Weekday) -> Bool { lhs.rawValue < rhs.rawValue }
}

// MARK: - LocalDate

/// A calendar date without a time or time zone, in the proleptic Gregorian calendar.
///
/// Encoded (`Codable`) as the string `"YYYY-MM-DD"`.
public struct LocalDate: Sendable, Hashable, Comparable, Codable, CustomStringConvertible {
    /// The year, e.g. `2026`.
    public var year: Int
    /// The month, `1...12`.
    public var month: Int
    /// The day of the month, `1...31` (bounded by the month's length).
    public var day: Int

    /// Creates a date; `nil` if the day does not exist (e.g. February 30) or the month is not `1...12`.
    public init?(year: Int, month: Int, day: Int) {
        guard (1...12).contains(month), day >= 1, day <= LocalDate.daysInMonth(year: year, month: month) else {
            return nil
        }
        self.year = year
        self.month = month
        self.day = day
    }

    /// Parses a strict ISO-8601 calendar date `"YYYY-MM-DD"`, e.g. `"2026-12-25"`.
    ///
    /// Surrounding spaces are ignored. Returns `nil` for other shapes and for days that do not
    /// exist, e.g. `"2026-02-30"`, `"2026-13-01"`, `"2026-1-05"`.
    public init?(parsing text: String) {
        let parts = text.trimmingCharacters(in: .whitespaces)
            .split(separator: "-", omittingEmptySubsequences: false)
        guard parts.count == 3, parts[0].count == 4, parts[1].count == 2, parts[2].count == 2,
              let year = asciiNumber(parts[0]), let month = asciiNumber(parts[1]), let day = asciiNumber(parts[2])
        else { return nil }
        self.init(year: year, month: month, day: day)
    }

    /// The date `daysSinceEpoch` days after 1970-01-01 (negative values go back).
    public init(daysSinceEpoch: Int) {
        // Howard Hinnant's civil_from_days.
        let z = daysSinceEpoch + 719_468
        let era = (z >= 0 ? z : z - 146_096) / 146_097
        let doe = z - era * 146_097
        let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100)
        let mp = (5 * doy + 2) / 153
        let day = doy - (153 * mp + 2) / 5 + 1
        let month = mp < 10 ? mp + 3 : mp - 9
        self.year = yoe + era * 400 + (month <= 2 ? 1 : 0)
        self.month = month
        self.day = day
    }

    /// Days since 1970-01-01 (negative before). Meaningful only for a valid date.
    public var daysSinceEpoch: Int {
        // Howard Hinnant's days_from_civil.
        let y = month <= 2 ? year - 1 : year
        let era = (y >= 0 ? y : y - 399) / 400
        let yoe = y - era * 400
        let doy = (153 * (month > 2 ? month - 3 : month + 9) + 2) / 5 + day - 1
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy
        return era * 146_097 + doe - 719_468
    }

    /// Whether the month is `1...12` and the day exists in that month.
    public var isValid: Bool {
        (1...12).contains(month) && day >= 1 && day <= LocalDate.daysInMonth(year: year, month: month)
    }

    /// The day of the week (Gregorian).
    public var weekday: Weekday {
        // 1970-01-01 was a Thursday; with Sunday = 0 that is 4.
        let index = ((daysSinceEpoch + 4) % 7 + 7) % 7
        return Weekday(rawValue: index + 1) ?? .sunday
    }

    /// The number of days in this date's month (0 if the month is not `1...12`).
    public var daysInMonth: Int { LocalDate.daysInMonth(year: year, month: month) }

    /// The date `days` days later (earlier for negative values).
    public func adding(days: Int) -> LocalDate { LocalDate(daysSinceEpoch: daysSinceEpoch + days) }

    /// Whether `year` is a Gregorian leap year.
    public static func isLeapYear(_ year: Int) -> Bool {
        (year % 4 == 0 && year % 100 != 0) || year % 400 == 0
    }

    /// The number of days in a month of the Gregorian calendar; 0 if `month` is not `1...12`.
    public static func daysInMonth(year: Int, month: Int) -> Int {
        switch month {
        case 1, 3, 5, 7, 8, 10, 12: 31
        case 4, 6, 9, 11: 30
        case 2: isLeapYear(year) ? 29 : 28
        default: 0
        }
    }

    /// The date as `"YYYY-MM-DD"`.
    public var description: String {
        let yearText = String(year)
        let paddedYear = year >= 0 && yearText.count < 4
            ? String(repeating: "0", count: 4 - yearText.count) + yearText : yearText
        return "\(paddedYear)-\(twoDigits(month))-\(twoDigits(day))"
    }

    /// Chronological order.
    public static func < (lhs: LocalDate, rhs: LocalDate) -> Bool {
        (lhs.year, lhs.month, lhs.day) < (rhs.year, rhs.month, rhs.day)
    }

    /// Decodes from a `"YYYY-MM-DD"` string (see ``init(parsing:)``).
    public init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        let text = try container.decode(String.self)
        guard let value = LocalDate(parsing: text) else {
            throw DecodingError.dataCorruptedError(
                in: container, debugDescription: "expected a date like \"2026-12-25\", got \"\(text)\"")
        }
        self = value
    }

    /// Encodes as a `"YYYY-MM-DD"` string.
    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(description)
    }
}

// MARK: - DaySelector

/// Which local calendar days a ``SchedulePeriod`` applies to (the day its window *starts*).
public enum DaySelector: Sendable, Hashable, Codable {
    /// Every listed weekday.
    case weekdays(Set<Weekday>)
    /// The n-th such weekday of each month: `n` in `1...5` (first … fifth; the fifth only in months
    /// that have one), or `-1` for the last such weekday of the month.
    case nthWeekday(Int, Weekday)
    /// The last calendar day of each month.
    case lastDayOfMonth
    /// The listed days of the month, `1...31`; days that do not exist in a month are skipped
    /// (31 never matches in April).
    case daysOfMonth(Set<Int>)

    /// Monday to Friday.
    public static let workdays: DaySelector = .weekdays(Weekday.workdays)

    /// Every day of the week.
    public static let everyDay: DaySelector = .weekdays(Set(Weekday.allCases))

    /// Whether `date` is selected, computing the weekday and the month's length with `calendar`.
    ///
    /// `calendar` must be a Gregorian calendar (its time zone does not matter); ``LocalDate`` fields
    /// are Gregorian. Returns `false` for an invalid date. ``ScheduleEvaluator`` uses the equivalent,
    /// allocation-free ``matches(_:)``.
    public func matches(_ date: LocalDate, calendar: Calendar) -> Bool {
        guard date.isValid,
              let noon = calendar.date(from: DateComponents(year: date.year, month: date.month, day: date.day, hour: 12)),
              let weekday = Weekday(rawValue: calendar.component(.weekday, from: noon))
        else { return false }
        let monthLength = calendar.range(of: .day, in: .month, for: noon)?.count ?? date.daysInMonth
        return matches(day: date.day, weekday: weekday, monthLength: monthLength)
    }

    /// Whether `date` is selected, using proleptic Gregorian arithmetic (no `Calendar`).
    /// Returns `false` for an invalid date.
    public func matches(_ date: LocalDate) -> Bool {
        guard date.isValid else { return false }
        return matches(day: date.day, weekday: date.weekday, monthLength: date.daysInMonth)
    }

    private func matches(day: Int, weekday: Weekday, monthLength: Int) -> Bool {
        switch self {
        case .weekdays(let set):
            return set.contains(weekday)
        case .nthWeekday(let n, let target):
            guard weekday == target else { return false }
            if n == -1 { return day + 7 > monthLength }
            guard (1...5).contains(n) else { return false }
            return (day - 1) / 7 + 1 == n
        case .lastDayOfMonth:
            return day == monthLength
        case .daysOfMonth(let set):
            return set.contains(day)
        }
    }

    /// Human-readable problems with this selector; empty when it is valid.
    public func validate() -> [String] {
        switch self {
        case .weekdays(let set):
            return set.isEmpty ? ["weekday set is empty"] : []
        case .nthWeekday(let n, let weekday):
            return n == -1 || (1...5).contains(n)
                ? [] : ["nth weekday must be 1...5 or -1 (last), got \(n) for \(weekday.shortName)"]
        case .lastDayOfMonth:
            return []
        case .daysOfMonth(let set):
            if set.isEmpty { return ["days of month set is empty"] }
            let bad = set.filter { !(1...31).contains($0) }.sorted()
            return bad.isEmpty
                ? [] : ["days of month must be 1...31, got \(bad.map(String.init).joined(separator: ", "))"]
        }
    }
}

// MARK: - SchedulePeriod

/// One recurring running window (or a lone start or stop boundary) of a ``Schedule``.
///
/// With both ``start`` and ``stop`` the period is a window `[start, stop)` on each selected day; if
/// `stop <= start` the window runs overnight and ends at `stop` on the next calendar day (whether or
/// not that day is selected). With only `start` (or only `stop`) the period is a lone boundary.
public struct SchedulePeriod: Sendable, Hashable, Codable {
    /// The days on which the period starts.
    public var days: DaySelector
    /// Local time from which the server should be running.
    public var start: MinuteOfDay?
    /// Local time at which the server should be stopped; `stop <= start` means the next day.
    public var stop: MinuteOfDay?

    /// Creates a period; at least one of `start` and `stop` is required (see ``validate()``).
    public init(days: DaySelector, start: MinuteOfDay?, stop: MinuteOfDay?) {
        self.days = days
        self.start = start
        self.stop = stop
    }

    /// Whether the period has both a start and a stop, i.e. defines running windows.
    public var isComplete: Bool { start != nil && stop != nil }

    /// Whether the window ends on the day after it starts (`stop <= start`).
    public var isOvernight: Bool {
        guard let start, let stop else { return false }
        return stop <= start
    }

    /// Human-readable problems with this period; empty when it is valid.
    public func validate() -> [String] {
        var problems = days.validate()
        switch (start, stop) {
        case (nil, nil):
            problems.append("needs a start or a stop time")
        case let (start?, stop?) where start == stop:
            problems.append("start and stop are both \(start); use different times (stop before start runs overnight)")
        default:
            break
        }
        if let start, !start.isValid {
            problems.append("start minute \(start.minutes) is outside 0..<1440")
        }
        if let stop, !stop.isValid {
            problems.append("stop minute \(stop.minutes) is outside 0..<1440")
        }
        return problems
    }
}

// MARK: - Policies

/// What the daemon does when a server's state differs from the schedule between boundaries.
public enum ManualActionPolicy: String, Sendable, Codable {
    /// Default: act only at boundaries, so manual starts/stops in between are left alone.
    case boundariesOnly = "boundaries-only"
    /// Converge to ``ScheduleEvaluator/desiredState(at:)`` on every pass.
    case enforce
}

/// Which actions a schedule may take.
public enum ScheduleMode: String, Sendable, Codable {
    /// Both start and stop servers.
    case stopAndStart = "stop-and-start"
    /// Only stop servers (never start them).
    case stopOnly = "stop-only"
    /// Only start servers (never stop them).
    case startOnly = "start-only"

    /// Whether this mode permits `action`.
    public func allows(_ action: ScheduleAction) -> Bool {
        switch (self, action) {
        case (.stopAndStart, _), (.stopOnly, .stop), (.startOnly, .start): true
        case (.stopOnly, .start), (.startOnly, .stop): false
        }
    }
}

// MARK: - Schedule

/// A named office-hours schedule: running windows and boundaries in one IANA time zone.
public struct Schedule: Sendable, Hashable {
    /// The schedule's name; servers refer to it by this value in a tag, so it must be a valid tag
    /// value (see ``isValidName(_:)``).
    public var name: String
    /// The IANA time zone in which all local times and dates are interpreted, e.g. `Europe/Berlin`.
    public var timeZone: TimeZone
    /// The periods; the running windows of all complete periods are united.
    public var periods: [SchedulePeriod]
    /// Local dates (holidays) on which no window starts and no lone boundary fires. A window that
    /// started the day before still ends normally on a skip date.
    public var skipDates: Set<LocalDate>
    /// How manual changes between boundaries are treated.
    public var manualPolicy: ManualActionPolicy
    /// Which actions the schedule takes.
    public var mode: ScheduleMode
    /// Whether the daemon should only log what it would do.
    public var dryRun: Bool

    /// Creates a schedule. Call ``validate()`` before using it.
    public init(
        name: String,
        timeZone: TimeZone,
        periods: [SchedulePeriod],
        skipDates: Set<LocalDate> = [],
        manualPolicy: ManualActionPolicy = .boundariesOnly,
        mode: ScheduleMode = .stopAndStart,
        dryRun: Bool = false
    ) {
        self.name = name
        self.timeZone = timeZone
        self.periods = periods
        self.skipDates = skipDates
        self.manualPolicy = manualPolicy
        self.mode = mode
        self.dryRun = dryRun
    }

    /// The longest allowed name.
    public static let maximumNameLength = 43

    /// Whether `name` is 1...43 characters, each an ASCII letter, digit, `.`, `-` or `_`.
    public static func isValidName(_ name: String) -> Bool {
        let bytes = Array(name.utf8)
        guard (1...maximumNameLength).contains(bytes.count) else { return false }
        return bytes.allSatisfy { byte in
            switch byte {
            case UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "a")...UInt8(ascii: "z"),
                 UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "."), UInt8(ascii: "-"), UInt8(ascii: "_"):
                true
            default:
                false
            }
        }
    }

    /// Human-readable problems, one per string, prefixed with the schedule name; empty when valid.
    ///
    /// Reports: an invalid name, no periods, a period with neither start nor stop, start == stop,
    /// times outside the day, an nth weekday out of range, days of month outside 1...31, an empty
    /// weekday or day set, an impossible skip date, and a mode that can never act (e.g. stop-only
    /// with no stop times). Periods with problems are ignored by ``ScheduleEvaluator``.
    public func validate() -> [String] {
        var problems: [String] = []
        let label = "schedule \"\(name)\""
        if !Schedule.isValidName(name) {
            problems.append(
                "\(label): name must be 1...\(Schedule.maximumNameLength) characters of A-Z a-z 0-9 . - _")
        }
        if periods.isEmpty {
            problems.append("\(label): has no periods")
        }
        for (index, period) in periods.enumerated() {
            for problem in period.validate() {
                problems.append("\(label): period \(index + 1): \(problem)")
            }
        }
        for date in skipDates.sorted() where !date.isValid {
            problems.append("\(label): skip date \(date) does not exist")
        }
        if !periods.isEmpty {
            if mode == .stopOnly, !periods.contains(where: { $0.stop != nil }) {
                problems.append("\(label): mode stop-only but no period has a stop time")
            }
            if mode == .startOnly, !periods.contains(where: { $0.start != nil }) {
                problems.append("\(label): mode start-only but no period has a start time")
            }
        }
        return problems
    }
}

// MARK: - Helpers

/// The value of a string made only of ASCII digits (no sign, no spaces), or `nil`.
private func asciiNumber(_ text: Substring) -> Int? {
    guard !text.isEmpty, text.utf8.count <= 9,
          text.utf8.allSatisfy({ (UInt8(ascii: "0")...UInt8(ascii: "9")).contains($0) })
    else { return nil }
    return Int(text)
}

/// `value` as at least two digits, e.g. `"07"`.
private func twoDigits(_ value: Int) -> String {
    (0..<10).contains(value) ? "0\(value)" : String(value)
}
