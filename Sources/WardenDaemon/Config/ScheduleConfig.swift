import Foundation
import WardenCore

/// Reads one schedule of the configuration.
///
/// ```yaml
/// office-hours:
///   timezone: Europe/Berlin
///   periods:
///     - days: mon-fri            # or [mon, wed], weekdays, weekends, every day,
///       start: "08:00"           #    first monday, last friday, last day
///       stop: "19:00"            # stop before start: an overnight period
///     - month_days: [1, 15]
///       stop: "20:00"
///   skip_dates: [2026-12-24, 2026-12-25]
///   manual_actions: boundaries-only   # or enforce
///   mode: stop-and-start              # or stop-only, start-only
///   dry_run: false
/// ```
enum ScheduleConfig {
    static func read(_ node: ConfigNode, name: String) -> Schedule? {
        node.allowOnly(["timezone", "periods", "skip_dates", "manual_actions", "mode", "dry_run"])
        guard Schedule.isValidName(name) else {
            node.fail("the schedule name must be a valid ECS tag value: 1-43 characters of A-Z a-z 0-9 . - _")
            return nil
        }
        // Problems are collected, not stopped at: a bad zone still lets the periods be checked.
        var valid = true
        var zone = TimeZone(identifier: "UTC") ?? TimeZone.current
        if let zoneName = node["timezone"].requiredString() {
            if let found = TimeZone(identifier: zoneName) {
                zone = found
            } else {
                node["timezone"].fail("'\(zoneName)' is not an IANA time zone (e.g. Europe/Berlin)")
                valid = false
            }
        } else {
            valid = false
        }
        var periods: [SchedulePeriod] = []
        for item in node["periods"].items {
            item.allowOnly(["days", "month_days", "start", "stop"])
            let selector: DaySelector?
            if item["month_days"].exists {
                let days = item["month_days"].items.compactMap { $0.scalar.flatMap(Int.init) }
                selector = .daysOfMonth(Set(days))
            } else {
                selector = days(item["days"])
            }
            let start = time(item["start"])
            let stop = time(item["stop"])
            if item["start"].exists == false && item["stop"].exists == false { item.fail("needs start, stop or both") }
            if let selector { periods.append(SchedulePeriod(days: selector, start: start, stop: stop)) }
        }
        if !node["periods"].exists { node["periods"].fail("is required: at least one period") }
        var skip: Set<LocalDate> = []
        for item in node["skip_dates"].items {
            guard let text = item.scalar, let date = LocalDate(parsing: text) else {
                item.fail("is not a date like 2026-12-25")
                continue
            }
            skip.insert(date)
        }
        let policyText = node["manual_actions"].string(default: "boundaries-only") ?? "boundaries-only"
        let policy = ManualActionPolicy(rawValue: policyText)
        if policy == nil { node["manual_actions"].fail("must be boundaries-only or enforce") }
        let modeText = node["mode"].string(default: "stop-and-start") ?? "stop-and-start"
        let mode = ScheduleMode(rawValue: modeText)
        if mode == nil { node["mode"].fail("must be stop-and-start, stop-only or start-only") }
        let schedule = Schedule(
            name: name, timeZone: zone, periods: periods, skipDates: skip, manualPolicy: policy ?? .boundariesOnly, mode: mode ?? .stopAndStart,
            dryRun: node["dry_run"].bool(default: false))
        for problem in schedule.validate() { node.fail(problem) }
        return valid ? schedule : nil
    }

    static func time(_ node: ConfigNode) -> MinuteOfDay? {
        guard let text = node.scalar else { return nil }
        guard let time = MinuteOfDay(parsing: text) else {
            node.fail("'\(text)' is not a time like 08:00 (quote it in YAML)")
            return nil
        }
        return time
    }

    static let ordinals = ["first": 1, "second": 2, "third": 3, "fourth": 4, "fifth": 5, "last": -1]

    static func days(_ node: ConfigNode) -> DaySelector? {
        guard node.exists else {
            node.fail("is required: weekdays such as mon-fri, or month_days")
            return nil
        }
        if node.isSequence {
            var set: Set<Weekday> = []
            for item in node.items {
                guard let text = item.scalar, let day = Weekday(parsing: text) else {
                    item.fail("is not a weekday (mon … sun)")
                    continue
                }
                set.insert(day)
            }
            return .weekdays(set)
        }
        guard let text = node.scalar?.lowercased().trimmingCharacters(in: .whitespaces) else { return nil }
        switch text {
        case "weekdays", "workdays": return .weekdays(Weekday.workdays)
        case "weekends", "weekend": return .weekdays([.saturday, .sunday])
        case "every day", "daily", "all": return .weekdays(Set(Weekday.allCases))
        case "last day", "last day of month", "last day of the month": return .lastDayOfMonth
        default: break
        }
        let words = text.split(separator: " ").map(String.init)
        if words.count == 2, let ordinal = ordinals[words[0]], let day = Weekday(parsing: words[1]) {
            return .nthWeekday(ordinal, day)
        }
        let range = text.split(separator: "-").map { $0.trimmingCharacters(in: .whitespaces) }
        if range.count == 2, let from = Weekday(parsing: range[0]), let to = Weekday(parsing: range[1]) {
            var set: Set<Weekday> = []
            var day = from.rawValue
            while true {
                if let weekday = Weekday(rawValue: day) { set.insert(weekday) }
                if day == to.rawValue { break }
                day = day % 7 + 1
            }
            return .weekdays(set)
        }
        if let day = Weekday(parsing: text) { return .weekdays([day]) }
        node.fail("'\(text)' is not a day selector (mon-fri, [mon, wed], weekdays, weekends, every day, first monday, last friday, last day)")
        return nil
    }
}
