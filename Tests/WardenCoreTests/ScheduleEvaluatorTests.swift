import Foundation
import Testing
@testable import WardenCore

// MARK: - Helpers

// `utc(_:)` comes from WardenHarness.swift (same parsing, shared by the suite).

/// An instant as a UTC ISO-8601 string, so that a wrong answer shows readably.
private func iso(_ date: Date) -> String { date.formatted(.iso8601) }

private func iso(_ date: Date?) -> String { date.map(iso) ?? "nil" }

private func text(_ boundaries: [ScheduleBoundary]) -> [String] { boundaries.map(\.description) }

private func text(_ boundary: ScheduleBoundary?) -> String { boundary?.description ?? "nil" }

private func text(_ windows: [DateInterval]) -> [String] {
    windows.map { "\(iso($0.start))..\(iso($0.end))" }
}

private func zone(_ identifier: String) -> TimeZone { TimeZone(identifier: identifier) ?? .gmt }

private func time(_ text: String?) -> MinuteOfDay? { text.flatMap(MinuteOfDay.init(parsing:)) }

private func day(_ text: String) -> LocalDate { LocalDate(parsing: text) ?? LocalDate(daysSinceEpoch: 0) }

private func period(_ days: DaySelector, _ start: String?, _ stop: String?) -> SchedulePeriod {
    SchedulePeriod(days: days, start: time(start), stop: time(stop))
}

private func evaluator(
    _ zoneID: String,
    _ periods: [SchedulePeriod],
    skip: [String] = [],
    mode: ScheduleMode = .stopAndStart
) -> ScheduleEvaluator {
    ScheduleEvaluator(schedule: Schedule(
        name: "test", timeZone: zone(zoneID), periods: periods,
        skipDates: Set(skip.map(day)), mode: mode))
}

private let berlin = "Europe/Berlin"
private let newYork = "America/New_York"
private let officeHours = period(.workdays, "08:00", "19:00")
private let everyDay = DaySelector.everyDay

// MARK: - Office hours

@Suite("Office hours Mon–Fri 08:00–19:00 Europe/Berlin")
struct OfficeHoursTests {
    let office = evaluator(berlin, [officeHours])

    @Test func time_zones_used_by_the_tests_exist() {
        #expect(TimeZone(identifier: berlin) != nil)
        #expect(TimeZone(identifier: newYork) != nil)
    }

    @Test func boundaries_across_a_normal_winter_week() {
        // 2026-03-01 is a Sunday; Berlin is on CET (UTC+1).
        let result = office.boundaries(after: utc("2026-03-01T00:00:00Z"), through: utc("2026-03-08T23:59:00Z"))
        #expect(text(result) == [
            "start@2026-03-02T07:00:00Z", "stop@2026-03-02T18:00:00Z",
            "start@2026-03-03T07:00:00Z", "stop@2026-03-03T18:00:00Z",
            "start@2026-03-04T07:00:00Z", "stop@2026-03-04T18:00:00Z",
            "start@2026-03-05T07:00:00Z", "stop@2026-03-05T18:00:00Z",
            "start@2026-03-06T07:00:00Z", "stop@2026-03-06T18:00:00Z",
        ])
    }

    @Test func boundaries_on_a_summer_day_use_CEST() {
        let result = office.boundaries(after: utc("2026-06-15T00:00:00Z"), through: utc("2026-06-15T23:59:00Z"))
        #expect(text(result) == ["start@2026-06-15T06:00:00Z", "stop@2026-06-15T17:00:00Z"])
    }

    @Test(arguments: [
        ("2026-03-02T06:59:59Z", DesiredState.stopped),  // Monday 07:59:59 local
        ("2026-03-02T07:00:00Z", .running),
        ("2026-03-02T12:00:00Z", .running),
        ("2026-03-02T17:59:59Z", .running),
        ("2026-03-02T18:00:00Z", .stopped),              // 19:00 local
        ("2026-03-02T23:00:00Z", .stopped),
        ("2026-03-07T10:00:00Z", .stopped),              // Saturday
        ("2026-03-08T10:00:00Z", .stopped),              // Sunday
        ("2026-03-06T17:30:00Z", .running),              // Friday
    ])
    func desired_state(_ instant: String, _ expected: DesiredState) {
        #expect(office.desiredState(at: utc(instant)) == expected, "at \(instant)")
    }

    @Test func windows_preview_a_week() {
        let result = office.windows(from: utc("2026-03-07T00:00:00Z"), to: utc("2026-03-14T00:00:00Z"))
        #expect(text(result) == [
            "2026-03-09T07:00:00Z..2026-03-09T18:00:00Z",
            "2026-03-10T07:00:00Z..2026-03-10T18:00:00Z",
            "2026-03-11T07:00:00Z..2026-03-11T18:00:00Z",
            "2026-03-12T07:00:00Z..2026-03-12T18:00:00Z",
            "2026-03-13T07:00:00Z..2026-03-13T18:00:00Z",
        ])
    }

    @Test func windows_overlapping_the_range_edges_are_returned_whole() {
        let result = office.windows(from: utc("2026-03-09T12:00:00Z"), to: utc("2026-03-10T08:00:00Z"))
        #expect(text(result) == [
            "2026-03-09T07:00:00Z..2026-03-09T18:00:00Z",
            "2026-03-10T07:00:00Z..2026-03-10T18:00:00Z",
        ])
        #expect(office.windows(from: utc("2026-03-09T18:00:00Z"), to: utc("2026-03-10T07:00:00Z")).isEmpty)
        #expect(office.windows(from: utc("2026-03-10T07:00:00Z"), to: utc("2026-03-09T07:00:00Z")).isEmpty)
    }
}

// MARK: - Daylight saving time

struct DSTCase: Sendable, CustomTestStringConvertible {
    var zone: String
    var periods: [SchedulePeriod]
    var from: String
    var through: String
    var expected: [String]
    var testDescription: String { "\(zone) \(from)" }
}

@Suite("Daylight saving time")
struct DaylightSavingTests {
    @Test(arguments: [
        // Spring forward in Berlin on Sunday 2026-03-29: 02:00 CET → 03:00 CEST at 01:00Z.
        DSTCase(zone: berlin, periods: [period(everyDay, "02:30", "04:00")],
                from: "2026-03-28T00:00:00Z", through: "2026-03-30T12:00:00Z",
                expected: [
                    "start@2026-03-28T01:30:00Z", "stop@2026-03-28T03:00:00Z",
                    "start@2026-03-29T01:00:00Z",  // 02:30 is in the gap → 03:00 CEST
                    "stop@2026-03-29T02:00:00Z",   // 04:00 CEST, after the gap
                    "start@2026-03-30T00:30:00Z", "stop@2026-03-30T02:00:00Z",
                ]),
        // Spring forward in New York on Sunday 2026-03-08: 02:00 EST → 03:00 EDT at 07:00Z.
        DSTCase(zone: newYork, periods: [period(everyDay, "02:30", "04:00")],
                from: "2026-03-07T00:00:00Z", through: "2026-03-09T12:00:00Z",
                expected: [
                    "start@2026-03-07T07:30:00Z", "stop@2026-03-07T09:00:00Z",
                    "start@2026-03-08T07:00:00Z",  // gap → 03:00 EDT
                    "stop@2026-03-08T08:00:00Z",   // 04:00 EDT
                    "start@2026-03-09T06:30:00Z", "stop@2026-03-09T08:00:00Z",
                ]),
        // Fall back in Berlin on Sunday 2026-10-25: 03:00 CEST → 02:00 CET at 01:00Z; 02:30 occurs twice.
        DSTCase(zone: berlin, periods: [period(everyDay, "02:30", "04:00")],
                from: "2026-10-25T00:00:00Z", through: "2026-10-25T23:00:00Z",
                expected: ["start@2026-10-25T00:30:00Z", "stop@2026-10-25T03:00:00Z"]),
        // Fall back in New York on Sunday 2026-11-01: 02:00 EDT → 01:00 EST at 06:00Z; 01:30 occurs twice.
        DSTCase(zone: newYork, periods: [period(everyDay, "01:30", "03:00")],
                from: "2026-11-01T04:00:00Z", through: "2026-11-02T03:00:00Z",
                expected: ["start@2026-11-01T05:30:00Z", "stop@2026-11-01T08:00:00Z"]),
        // A lone boundary in the gap and one in the repeated hour.
        DSTCase(zone: berlin, periods: [period(everyDay, "02:30", nil)],
                from: "2026-03-29T00:00:00Z", through: "2026-03-29T23:00:00Z",
                expected: ["start@2026-03-29T01:00:00Z"]),
        DSTCase(zone: berlin, periods: [period(everyDay, nil, "02:30")],
                from: "2026-10-25T00:00:00Z", through: "2026-10-25T23:00:00Z",
                expected: ["stop@2026-10-25T00:30:00Z"]),
    ])
    func boundaries_around_transitions(_ testCase: DSTCase) {
        let result = evaluator(testCase.zone, testCase.periods)
            .boundaries(after: utc(testCase.from), through: utc(testCase.through))
        #expect(text(result) == testCase.expected)
    }

    @Test(arguments: [
        (berlin, "2026-03-29", "02:00", "2026-03-29T01:00:00Z"),  // gap start → 03:00 CEST
        (berlin, "2026-03-29", "02:30", "2026-03-29T01:00:00Z"),
        (berlin, "2026-03-29", "02:59", "2026-03-29T01:00:00Z"),
        (berlin, "2026-03-29", "03:00", "2026-03-29T01:00:00Z"),
        (berlin, "2026-03-29", "01:59", "2026-03-29T00:59:00Z"),
        (berlin, "2026-10-25", "02:00", "2026-10-25T00:00:00Z"),  // repeated → first (CEST)
        (berlin, "2026-10-25", "02:59", "2026-10-25T00:59:00Z"),
        (berlin, "2026-10-25", "03:00", "2026-10-25T02:00:00Z"),
        (berlin, "2026-10-25", "01:59", "2026-10-24T23:59:00Z"),
        (newYork, "2026-03-08", "02:30", "2026-03-08T07:00:00Z"),
        (newYork, "2026-11-01", "01:00", "2026-11-01T05:00:00Z"),
        (newYork, "2026-11-01", "01:30", "2026-11-01T05:30:00Z"),
        (newYork, "2026-11-01", "02:00", "2026-11-01T07:00:00Z"),
        (newYork, "2026-11-01", "02:30", "2026-11-01T07:30:00Z"),
    ])
    func local_time_resolution(_ zoneID: String, _ date: String, _ local: String, _ expected: String) throws {
        let resolved = evaluator(zoneID, []).instant(on: day(date), at: try #require(time(local)))
        #expect(iso(resolved) == expected, "\(zoneID) \(date) \(local)")
    }

    @Test(arguments: [
        // Saturday 22:00 → Sunday 06:00 on the night the clocks change.
        (berlin, "2026-03-28", "2026-03-28T21:00:00Z", "2026-03-29T04:00:00Z", 7.0),
        (newYork, "2026-03-07", "2026-03-08T03:00:00Z", "2026-03-08T10:00:00Z", 7.0),
        (berlin, "2026-10-24", "2026-10-24T20:00:00Z", "2026-10-25T05:00:00Z", 9.0),
        (newYork, "2026-10-31", "2026-11-01T02:00:00Z", "2026-11-01T11:00:00Z", 9.0),
    ])
    func overnight_window_spanning_the_change(
        _ zoneID: String, _ saturday: String, _ start: String, _ stop: String, _ hours: Double
    ) {
        let night = evaluator(zoneID, [period(.weekdays([.saturday]), "22:00", "06:00")])
        let from = utc("\(saturday)T00:00:00Z")
        let result = night.windows(from: from, to: from.addingTimeInterval(2 * 86_400))
        #expect(text(result) == ["\(start)..\(stop)"])
        #expect(result.first?.duration == hours * 3600)
        #expect(text(night.boundaries(after: from, through: from.addingTimeInterval(2 * 86_400)))
            == ["start@\(start)", "stop@\(stop)"])
    }

    @Test func window_covering_the_repeated_hour_lasts_two_hours() {
        // 02:00 (first occurrence, CEST) to 03:00 (CET): 00:00Z–02:00Z.
        let night = evaluator(berlin, [period(everyDay, "02:00", "03:00")])
        let result = night.windows(from: utc("2026-10-24T23:00:00Z"), to: utc("2026-10-25T12:00:00Z"))
        #expect(text(result) == ["2026-10-25T00:00:00Z..2026-10-25T02:00:00Z"])
    }

    @Test(arguments: [
        ("2026-10-25T00:29:59Z", DesiredState.stopped),
        ("2026-10-25T00:30:00Z", .running),   // first 02:30
        ("2026-10-25T01:30:00Z", .running),   // second 02:30 does not restart anything
        ("2026-10-25T02:59:59Z", .running),
        ("2026-10-25T03:00:00Z", .stopped),   // 04:00 CET
    ])
    func desired_state_in_the_repeated_hour(_ instant: String, _ expected: DesiredState) {
        let night = evaluator(berlin, [period(everyDay, "02:30", "04:00")])
        #expect(night.desiredState(at: utc(instant)) == expected, "at \(instant)")
    }

    @Test func window_entirely_inside_the_gap_is_dropped() {
        // Both 02:10 and 02:40 resolve to 03:00 CEST on 2026-03-29: an empty window.
        let gap = evaluator(berlin, [period(everyDay, "02:10", "02:40")])
        #expect(text(gap.boundaries(after: utc("2026-03-28T23:00:00Z"), through: utc("2026-03-29T22:00:00Z"))) == [])
        #expect(gap.desiredState(at: utc("2026-03-29T01:00:00Z")) == .stopped)
        #expect(text(gap.windows(from: utc("2026-03-30T00:00:00Z"), to: utc("2026-03-30T06:00:00Z")))
            == ["2026-03-30T00:10:00Z..2026-03-30T00:40:00Z"])
    }
}

// MARK: - Overnight

@Suite("Overnight periods")
struct OvernightTests {
    @Test func daily_22_to_06_across_year_end() {
        let night = evaluator(berlin, [period(everyDay, "22:00", "06:00")])
        let result = night.boundaries(after: utc("2026-12-30T12:00:00Z"), through: utc("2027-01-02T12:00:00Z"))
        #expect(text(result) == [
            "start@2026-12-30T21:00:00Z", "stop@2026-12-31T05:00:00Z",
            "start@2026-12-31T21:00:00Z", "stop@2027-01-01T05:00:00Z",
            "start@2027-01-01T21:00:00Z", "stop@2027-01-02T05:00:00Z",
        ])
        #expect(night.desiredState(at: utc("2026-12-31T23:00:00Z")) == .running)  // 00:00 on Jan 1
        #expect(night.desiredState(at: utc("2027-01-01T05:00:00Z")) == .stopped)
    }

    @Test func across_month_end() {
        let night = evaluator(berlin, [period(.daysOfMonth([31]), "22:00", "06:00")])
        let result = night.boundaries(after: utc("2026-01-30T00:00:00Z"), through: utc("2026-02-03T00:00:00Z"))
        #expect(text(result) == ["start@2026-01-31T21:00:00Z", "stop@2026-02-01T05:00:00Z"])
    }

    @Test func selector_applies_to_the_start_day_only() {
        // Fridays only: the Saturday morning stop still happens.
        let night = evaluator(berlin, [period(.weekdays([.friday]), "22:00", "06:00")])
        let result = night.boundaries(after: utc("2026-03-05T00:00:00Z"), through: utc("2026-03-09T00:00:00Z"))
        #expect(text(result) == ["start@2026-03-06T21:00:00Z", "stop@2026-03-07T05:00:00Z"])
        #expect(night.desiredState(at: utc("2026-03-07T02:00:00Z")) == .running)   // Saturday 03:00
        #expect(night.desiredState(at: utc("2026-03-07T05:00:00Z")) == .stopped)
        #expect(night.desiredState(at: utc("2026-03-07T22:00:00Z")) == .stopped)   // Saturday 23:00
    }
}

// MARK: - Day selectors

@Suite("Day selectors")
struct DaySelectorTests {
    @Test(arguments: [
        (DaySelector.nthWeekday(1, .monday), "2026-03-02", true),
        (.nthWeekday(1, .monday), "2026-03-09", false),
        (.nthWeekday(1, .monday), "2026-03-03", false),
        (.nthWeekday(2, .monday), "2026-03-09", true),
        (.nthWeekday(5, .monday), "2026-03-30", true),
        (.nthWeekday(5, .monday), "2026-02-23", false),
        (.nthWeekday(-1, .friday), "2026-07-31", true),
        (.nthWeekday(-1, .friday), "2026-07-24", false),
        (.nthWeekday(-1, .friday), "2026-02-27", true),
        (.nthWeekday(4, .friday), "2026-02-27", true),
        (.nthWeekday(6, .friday), "2026-02-27", false),
        (.nthWeekday(0, .friday), "2026-02-06", false),
        (.lastDayOfMonth, "2028-02-29", true),
        (.lastDayOfMonth, "2028-02-28", false),
        (.lastDayOfMonth, "2026-02-28", true),
        (.lastDayOfMonth, "2026-04-30", true),
        (.lastDayOfMonth, "2026-04-29", false),
        (.lastDayOfMonth, "2026-12-31", true),
        (.daysOfMonth([31]), "2026-03-31", true),
        (.daysOfMonth([1, 15]), "2026-03-15", true),
        (.daysOfMonth([1, 15]), "2026-03-16", false),
        (.weekdays([.saturday, .sunday]), "2026-03-07", true),
        (.weekdays([.saturday, .sunday]), "2026-03-06", false),
        (.weekdays([]), "2026-03-06", false),
    ])
    func matches(_ selector: DaySelector, _ date: String, _ expected: Bool) {
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = zone(berlin)
        #expect(selector.matches(day(date)) == expected, "\(selector) \(date)")
        #expect(selector.matches(day(date), calendar: calendar) == expected, "\(selector) \(date) with Calendar")
    }

    @Test func arithmetic_and_calendar_agree_for_every_day_2024_to_2030() {
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = zone(newYork)
        let selectors: [DaySelector] = [
            .nthWeekday(1, .monday), .nthWeekday(5, .sunday), .nthWeekday(-1, .friday),
            .lastDayOfMonth, .daysOfMonth([29, 30, 31]), .workdays,
        ]
        var mismatches: [String] = []
        let first = day("2024-01-01").daysSinceEpoch
        let last = day("2030-12-31").daysSinceEpoch
        for number in first...last {
            let date = LocalDate(daysSinceEpoch: number)
            for selector in selectors where selector.matches(date) != selector.matches(date, calendar: calendar) {
                mismatches.append("\(selector) \(date)")
            }
        }
        #expect(mismatches == [])
    }

    @Test func first_monday_of_each_month() {
        let ev = evaluator(berlin, [period(.nthWeekday(1, .monday), "09:00", "10:00")])
        let starts = ev.boundaries(after: utc("2026-01-01T00:00:00Z"), through: utc("2027-01-01T00:00:00Z"))
            .filter { $0.action == .start }
        #expect(starts.map { iso($0.date) } == [
            "2026-01-05T08:00:00Z", "2026-02-02T08:00:00Z", "2026-03-02T08:00:00Z", "2026-04-06T07:00:00Z",
            "2026-05-04T07:00:00Z", "2026-06-01T07:00:00Z", "2026-07-06T07:00:00Z", "2026-08-03T07:00:00Z",
            "2026-09-07T07:00:00Z", "2026-10-05T07:00:00Z", "2026-11-02T08:00:00Z", "2026-12-07T08:00:00Z",
        ])
    }

    @Test func last_friday_of_each_month() {
        let ev = evaluator(berlin, [period(.nthWeekday(-1, .friday), nil, "17:00")])
        let result = ev.boundaries(after: utc("2026-01-01T00:00:00Z"), through: utc("2027-01-01T00:00:00Z"))
        #expect(result.map { iso($0.date) } == [
            "2026-01-30T16:00:00Z", "2026-02-27T16:00:00Z", "2026-03-27T16:00:00Z", "2026-04-24T15:00:00Z",
            "2026-05-29T15:00:00Z", "2026-06-26T15:00:00Z", "2026-07-31T15:00:00Z", "2026-08-28T15:00:00Z",
            "2026-09-25T15:00:00Z", "2026-10-30T16:00:00Z", "2026-11-27T16:00:00Z", "2026-12-25T16:00:00Z",
        ])
        #expect(result.allSatisfy { $0.action == .stop })
    }

    @Test func fifth_monday_only_in_months_that_have_one() {
        let ev = evaluator(berlin, [period(.nthWeekday(5, .monday), "09:00", nil)])
        let result = ev.boundaries(after: utc("2026-01-01T00:00:00Z"), through: utc("2027-01-01T00:00:00Z"))
        #expect(result.map { iso($0.date) } == [
            "2026-03-30T07:00:00Z", "2026-06-29T07:00:00Z", "2026-08-31T07:00:00Z", "2026-11-30T08:00:00Z",
        ])
    }

    @Test func last_day_of_month_including_leap_february_and_30_day_months() {
        let ev = evaluator(berlin, [period(.lastDayOfMonth, nil, "18:00")])
        let leap = ev.boundaries(after: utc("2028-01-01T00:00:00Z"), through: utc("2028-06-01T00:00:00Z"))
        #expect(text(leap) == [
            "stop@2028-01-31T17:00:00Z", "stop@2028-02-29T17:00:00Z", "stop@2028-03-31T16:00:00Z",
            "stop@2028-04-30T16:00:00Z", "stop@2028-05-31T16:00:00Z",
        ])
        let common = ev.boundaries(after: utc("2026-02-01T00:00:00Z"), through: utc("2026-05-01T00:00:00Z"))
        #expect(text(common) == [
            "stop@2026-02-28T17:00:00Z", "stop@2026-03-31T16:00:00Z", "stop@2026-04-30T16:00:00Z",
        ])
    }

    @Test func day_31_is_skipped_in_shorter_months() {
        let ev = evaluator(berlin, [period(.daysOfMonth([31]), "09:00", nil)])
        let result = ev.boundaries(after: utc("2026-01-01T00:00:00Z"), through: utc("2026-07-01T00:00:00Z"))
        #expect(text(result) == [
            "start@2026-01-31T08:00:00Z", "start@2026-03-31T07:00:00Z", "start@2026-05-31T07:00:00Z",
        ])
    }
}

// MARK: - Skip dates

@Suite("Skip dates")
struct SkipDateTests {
    @Test func holiday_removes_that_days_start_and_stop() {
        // 2026-12-25 is a Friday.
        let ev = evaluator(berlin, [officeHours], skip: ["2026-12-25"])
        let result = ev.boundaries(after: utc("2026-12-24T00:00:00Z"), through: utc("2026-12-29T00:00:00Z"))
        #expect(text(result) == [
            "start@2026-12-24T07:00:00Z", "stop@2026-12-24T18:00:00Z",
            "start@2026-12-28T07:00:00Z", "stop@2026-12-28T18:00:00Z",
        ])
        #expect(ev.desiredState(at: utc("2026-12-25T10:00:00Z")) == .stopped)
    }

    @Test func overnight_started_the_day_before_still_stops() {
        let ev = evaluator(berlin, [period(everyDay, "22:00", "06:00")], skip: ["2026-12-25"])
        let result = ev.boundaries(after: utc("2026-12-24T12:00:00Z"), through: utc("2026-12-27T12:00:00Z"))
        #expect(text(result) == [
            "start@2026-12-24T21:00:00Z", "stop@2026-12-25T05:00:00Z",  // Dec 24 → 25 runs normally
            // no start on Dec 25 22:00, hence no stop on Dec 26 06:00
            "start@2026-12-26T21:00:00Z", "stop@2026-12-27T05:00:00Z",
        ])
        #expect(ev.desiredState(at: utc("2026-12-25T02:00:00Z")) == .running)
        #expect(ev.desiredState(at: utc("2026-12-25T22:00:00Z")) == .stopped)
    }

    @Test func lone_boundaries_on_a_holiday_do_not_fire() {
        let ev = evaluator(berlin, [period(everyDay, nil, "19:00"), period(everyDay, "07:00", nil)],
                           skip: ["2026-12-25"])
        let result = ev.boundaries(after: utc("2026-12-24T12:00:00Z"), through: utc("2026-12-26T12:00:00Z"))
        #expect(text(result) == ["stop@2026-12-24T18:00:00Z", "start@2026-12-26T06:00:00Z"])
    }

    @Test func invalid_skip_dates_are_ignored() {
        var bogus = day("2026-12-25")
        bogus.month = 13
        let schedule = Schedule(name: "x", timeZone: zone(berlin), periods: [officeHours], skipDates: [bogus])
        let result = ScheduleEvaluator(schedule: schedule)
            .boundaries(after: utc("2026-12-24T00:00:00Z"), through: utc("2026-12-24T23:00:00Z"))
        #expect(text(result) == ["start@2026-12-24T07:00:00Z", "stop@2026-12-24T18:00:00Z"])
    }
}

// MARK: - Modes and desired state

@Suite("Modes and desired state")
struct ModeTests {
    let from = utc("2026-03-02T00:00:00Z")
    let through = utc("2026-03-03T23:00:00Z")

    @Test func stop_only_mode_yields_only_stops() {
        let ev = evaluator(berlin, [officeHours], mode: .stopOnly)
        #expect(text(ev.boundaries(after: from, through: through)) == [
            "stop@2026-03-02T18:00:00Z", "stop@2026-03-03T18:00:00Z",
        ])
        #expect(text(ev.nextBoundary(after: from)) == "stop@2026-03-02T18:00:00Z")
    }

    @Test func start_only_mode_yields_only_starts() {
        let ev = evaluator(berlin, [officeHours], mode: .startOnly)
        #expect(text(ev.boundaries(after: from, through: through)) == [
            "start@2026-03-02T07:00:00Z", "start@2026-03-03T07:00:00Z",
        ])
        #expect(text(ev.lastBoundary(atOrBefore: utc("2026-03-02T20:00:00Z"))) == "start@2026-03-02T07:00:00Z")
    }

    @Test(arguments: [
        (ScheduleMode.stopAndStart, "2026-03-02T10:00:00Z", DesiredState.running, ScheduleAction?.some(.start)),
        (.stopAndStart, "2026-03-02T20:00:00Z", .stopped, .some(.stop)),
        (.stopOnly, "2026-03-02T10:00:00Z", .running, nil),
        (.stopOnly, "2026-03-02T20:00:00Z", .stopped, .some(.stop)),
        (.startOnly, "2026-03-02T10:00:00Z", .running, .some(.start)),
        (.startOnly, "2026-03-02T20:00:00Z", .stopped, nil),
    ])
    func desired_state_ignores_mode_but_desired_action_respects_it(
        _ mode: ScheduleMode, _ instant: String, _ state: DesiredState, _ action: ScheduleAction?
    ) {
        let ev = evaluator(berlin, [officeHours], mode: mode)
        #expect(ev.desiredState(at: utc(instant)) == state)
        #expect(ev.desiredAction(at: utc(instant)) == action)
    }

    @Test func stop_only_schedule_has_undefined_desired_state() {
        let ev = evaluator(berlin, [period(everyDay, nil, "19:00")], mode: .stopOnly)
        #expect(ev.hasCompleteWindows == false)
        #expect(ev.desiredState(at: utc("2026-03-02T10:00:00Z")) == .undefined)
        #expect(ev.desiredState(at: utc("2026-03-02T20:00:00Z")) == .undefined)
        #expect(ev.desiredAction(at: utc("2026-03-02T20:00:00Z")) == nil)
        #expect(text(ev.nextBoundary(after: utc("2026-03-02T10:00:00Z"))) == "stop@2026-03-02T18:00:00Z")
        #expect(ev.windows(from: utc("2026-03-02T00:00:00Z"), to: utc("2026-03-09T00:00:00Z")).isEmpty)
    }

    @Test func schedule_without_valid_periods_is_inert() {
        let empty = evaluator(berlin, [])
        let broken = evaluator(berlin, [period(.nthWeekday(0, .monday), "08:00", "19:00")])
        for ev in [empty, broken] {
            #expect(ev.desiredState(at: utc("2026-03-02T10:00:00Z")) == .undefined)
            #expect(ev.nextBoundary(after: utc("2026-03-02T10:00:00Z")) == nil)
            #expect(ev.lastBoundary(atOrBefore: utc("2026-03-02T10:00:00Z")) == nil)
            #expect(ev.boundaries(after: utc("2026-03-01T00:00:00Z"), through: utc("2026-04-01T00:00:00Z")).isEmpty)
        }
    }
}

// MARK: - Exact instants

@Suite("Boundaries exactly on the minute")
struct ExactInstantTests {
    let office = evaluator(berlin, [officeHours])
    let start = utc("2026-03-02T07:00:00Z")
    let stop = utc("2026-03-02T18:00:00Z")

    @Test func range_is_half_open_on_the_left() {
        #expect(text(office.boundaries(after: start.addingTimeInterval(-0.001), through: start))
            == ["start@2026-03-02T07:00:00Z"])
        #expect(text(office.boundaries(after: start.addingTimeInterval(-60), through: start))
            == ["start@2026-03-02T07:00:00Z"])
        #expect(text(office.boundaries(after: start, through: start.addingTimeInterval(60))) == [])
        #expect(text(office.boundaries(after: start.addingTimeInterval(-60), through: start.addingTimeInterval(-0.001)))
            == [])
        #expect(text(office.boundaries(after: start, through: stop)) == ["stop@2026-03-02T18:00:00Z"])
        #expect(text(office.boundaries(after: start, through: start)) == [])
    }

    @Test func desired_state_at_the_edges() {
        #expect(office.desiredState(at: start.addingTimeInterval(-0.001)) == .stopped)
        #expect(office.desiredState(at: start) == .running)
        #expect(office.desiredState(at: stop.addingTimeInterval(-0.001)) == .running)
        #expect(office.desiredState(at: stop) == .stopped)
    }

    @Test func next_and_last_at_a_boundary() {
        #expect(text(office.lastBoundary(atOrBefore: start)) == "start@2026-03-02T07:00:00Z")
        #expect(text(office.nextBoundary(after: start)) == "stop@2026-03-02T18:00:00Z")
        #expect(text(office.nextBoundary(after: start.addingTimeInterval(-0.001))) == "start@2026-03-02T07:00:00Z")
        #expect(text(office.lastBoundary(atOrBefore: start.addingTimeInterval(-0.001))) == "stop@2026-02-27T18:00:00Z")
    }
}

// MARK: - Next / last boundary

@Suite("Next and last boundary")
struct NextLastTests {
    let office = evaluator(berlin, [officeHours])

    @Test(arguments: [
        // instant, next, last — across the weekend of 2026-03-07/08
        ("2026-03-06T17:59:59Z", "stop@2026-03-06T18:00:00Z", "start@2026-03-06T07:00:00Z"),
        ("2026-03-06T18:00:00Z", "start@2026-03-09T07:00:00Z", "stop@2026-03-06T18:00:00Z"),
        ("2026-03-07T12:00:00Z", "start@2026-03-09T07:00:00Z", "stop@2026-03-06T18:00:00Z"),
        ("2026-03-08T22:59:00Z", "start@2026-03-09T07:00:00Z", "stop@2026-03-06T18:00:00Z"),
        ("2026-03-09T06:59:59Z", "start@2026-03-09T07:00:00Z", "stop@2026-03-06T18:00:00Z"),
    ])
    func across_a_weekend(_ instant: String, _ next: String, _ last: String) {
        #expect(text(office.nextBoundary(after: utc(instant))) == next, "next after \(instant)")
        #expect(text(office.lastBoundary(atOrBefore: utc(instant))) == last, "last at or before \(instant)")
    }

    @Test func searches_across_several_chunks() {
        let monthly = evaluator(berlin, [period(.daysOfMonth([31]), "09:00", nil)])
        #expect(text(monthly.nextBoundary(after: utc("2026-05-31T12:00:00Z"))) == "start@2026-07-31T07:00:00Z")
        #expect(text(monthly.lastBoundary(atOrBefore: utc("2026-07-30T12:00:00Z"))) == "start@2026-05-31T07:00:00Z")
    }

    @Test func search_stops_after_400_days() {
        // Month ends from 2026-01-31 to 2027-03-31 are holidays: the next stop is 2027-04-30.
        var skip: [String] = []
        var date = day("2026-01-31")
        while date <= day("2027-03-31") {
            skip.append(date.description)
            date = date.adding(days: 1)
            date = LocalDate(year: date.year, month: date.month, day: date.daysInMonth) ?? date
        }
        #expect(skip.count == 15)
        let ev = evaluator(berlin, [period(.lastDayOfMonth, nil, "18:00")], skip: skip)
        #expect(ev.nextBoundary(after: utc("2026-01-01T00:00:00Z")) == nil)
        #expect(text(ev.nextBoundary(after: utc("2026-04-01T00:00:00Z"))) == "stop@2027-04-30T16:00:00Z")
        #expect(text(ev.lastBoundary(atOrBefore: utc("2027-04-30T16:00:00Z"))) == "stop@2027-04-30T16:00:00Z")
        #expect(ev.lastBoundary(atOrBefore: utc("2027-04-30T15:59:00Z")) == nil)
    }
}

// MARK: - Overlapping periods

@Suite("Overlapping periods are united")
struct OverlapTests {
    @Test func longer_window_on_first_monday_absorbs_office_hours() {
        let ev = evaluator(berlin, [officeHours, period(.nthWeekday(1, .monday), "06:00", "22:00")])
        let result = ev.boundaries(after: utc("2026-03-02T00:00:00Z"), through: utc("2026-03-03T23:00:00Z"))
        #expect(text(result) == [
            "start@2026-03-02T05:00:00Z", "stop@2026-03-02T21:00:00Z",
            "start@2026-03-03T07:00:00Z", "stop@2026-03-03T18:00:00Z",
        ])
        #expect(ev.desiredState(at: utc("2026-03-02T19:00:00Z")) == .running)
    }

    @Test func touching_windows_have_no_boundary_between_them() {
        let ev = evaluator(berlin, [period(.workdays, "08:00", "12:00"), period(.workdays, "12:00", "19:00")])
        let result = ev.boundaries(after: utc("2026-03-02T00:00:00Z"), through: utc("2026-03-02T23:00:00Z"))
        #expect(text(result) == ["start@2026-03-02T07:00:00Z", "stop@2026-03-02T18:00:00Z"])
        #expect(text(ev.windows(from: utc("2026-03-02T00:00:00Z"), to: utc("2026-03-02T23:00:00Z")))
            == ["2026-03-02T07:00:00Z..2026-03-02T18:00:00Z"])
        #expect(ev.desiredState(at: utc("2026-03-02T11:00:00Z")) == .running)
    }

    @Test func duplicate_lone_boundary_is_reported_once() {
        let ev = evaluator(berlin, [officeHours, period(.workdays, "08:00", nil)])
        let result = ev.boundaries(after: utc("2026-03-02T00:00:00Z"), through: utc("2026-03-02T23:00:00Z"))
        #expect(text(result) == ["start@2026-03-02T07:00:00Z", "stop@2026-03-02T18:00:00Z"])
    }
}

// MARK: - Consistency

@Suite("Consistency between boundaries and desired state")
struct ConsistencyTests {
    @Test(arguments: [
        (berlin, [officeHours]),
        (newYork, [period(everyDay, "22:00", "06:00")]),
        (berlin, [period(everyDay, "02:30", "04:00"), period(.nthWeekday(-1, .sunday), "01:00", "03:30")]),
        (newYork, [officeHours, period(.nthWeekday(1, .monday), "06:00", "22:00"), period(.lastDayOfMonth, "23:00", "01:30")]),
    ])
    func every_boundary_flips_the_desired_state(_ zoneID: String, _ periods: [SchedulePeriod]) {
        let ev = evaluator(zoneID, periods, skip: ["2026-12-25", "2026-03-29"])
        let all = ev.boundaries(after: utc("2026-01-01T00:00:00Z"), through: utc("2027-01-01T00:00:00Z"))
        #expect(all.count > 20)
        var problems: [String] = []
        var previous: ScheduleAction?
        for boundary in all {
            let after: DesiredState = boundary.action == .start ? .running : .stopped
            let before: DesiredState = boundary.action == .start ? .stopped : .running
            if ev.desiredState(at: boundary.date) != after { problems.append("at \(boundary)") }
            if ev.desiredState(at: boundary.date.addingTimeInterval(-0.5)) != before { problems.append("before \(boundary)") }
            if previous == boundary.action { problems.append("repeated \(boundary)") }
            previous = boundary.action
        }
        #expect(problems == [])
        // Chunked search agrees with the full listing.
        var walked: [ScheduleBoundary] = []
        var cursor = utc("2026-01-01T00:00:00Z")
        // Bounded so that a search returning its own starting instant fails instead of hanging.
        while let next = ev.nextBoundary(after: cursor), next.date <= utc("2027-01-01T00:00:00Z"),
              walked.count <= all.count {
            walked.append(next)
            cursor = next.date
        }
        #expect(walked == all)
    }

    @Test func last_boundary_walk_agrees_with_listing() {
        let ev = evaluator(berlin, [officeHours, period(everyDay, nil, "23:00")])
        let end = utc("2026-04-15T00:00:00Z")
        let all = ev.boundaries(after: utc("2026-03-01T00:00:00Z"), through: end)
        var walked: [ScheduleBoundary] = []
        var cursor = end
        while let last = ev.lastBoundary(atOrBefore: cursor), last.date > utc("2026-03-01T00:00:00Z"),
              walked.count <= all.count {
            walked.insert(last, at: 0)
            cursor = last.date.addingTimeInterval(-0.001)
        }
        #expect(walked == all)
    }
}

// MARK: - Validation

@Suite("Validation")
struct ValidationTests {
    private static func schedule(_ name: String, _ periods: [SchedulePeriod], mode: ScheduleMode = .stopAndStart)
        -> Schedule {
        Schedule(name: name, timeZone: zone(berlin), periods: periods, mode: mode)
    }

    @Test(arguments: [
        (schedule("office", [officeHours]), [String]()),
        (schedule("office.hours-Berlin_1", [officeHours]), []),
        (schedule("office", []), ["schedule \"office\": has no periods"]),
        (schedule("office", [period(.workdays, nil, nil)]),
         ["schedule \"office\": period 1: needs a start or a stop time"]),
        (schedule("office", [officeHours, period(.workdays, "08:00", "08:00")]),
         ["schedule \"office\": period 2: start and stop are both 08:00; use different times (stop before start runs overnight)"]),
        (schedule("office", [period(.nthWeekday(6, .monday), "08:00", "19:00")]),
         ["schedule \"office\": period 1: nth weekday must be 1...5 or -1 (last), got 6 for mon"]),
        (schedule("office", [period(.nthWeekday(0, .friday), "08:00", "19:00")]),
         ["schedule \"office\": period 1: nth weekday must be 1...5 or -1 (last), got 0 for fri"]),
        (schedule("office", [period(.daysOfMonth([0, 15, 32]), "08:00", "19:00")]),
         ["schedule \"office\": period 1: days of month must be 1...31, got 0, 32"]),
        (schedule("office", [period(.daysOfMonth([]), "08:00", "19:00")]),
         ["schedule \"office\": period 1: days of month set is empty"]),
        (schedule("office", [period(.weekdays([]), "08:00", "19:00")]),
         ["schedule \"office\": period 1: weekday set is empty"]),
        (schedule("", [officeHours]),
         ["schedule \"\": name must be 1...43 characters of A-Z a-z 0-9 . - _"]),
        (schedule("office hours", [officeHours]),
         ["schedule \"office hours\": name must be 1...43 characters of A-Z a-z 0-9 . - _"]),
        (schedule("büro", [officeHours]),
         ["schedule \"büro\": name must be 1...43 characters of A-Z a-z 0-9 . - _"]),
        (schedule(String(repeating: "a", count: 44), [officeHours]),
         ["schedule \"\(String(repeating: "a", count: 44))\": name must be 1...43 characters of A-Z a-z 0-9 . - _"]),
        (schedule(String(repeating: "a", count: 43), [officeHours]), []),
        (schedule("office", [period(.everyDay, "08:00", nil)], mode: .stopOnly),
         ["schedule \"office\": mode stop-only but no period has a stop time"]),
        (schedule("office", [period(.everyDay, nil, "19:00")], mode: .startOnly),
         ["schedule \"office\": mode start-only but no period has a start time"]),
        (schedule("a,b", [period(.weekdays([]), nil, nil)]), [
            "schedule \"a,b\": name must be 1...43 characters of A-Z a-z 0-9 . - _",
            "schedule \"a,b\": period 1: weekday set is empty",
            "schedule \"a,b\": period 1: needs a start or a stop time",
        ]),
    ])
    func messages(_ schedule: Schedule, _ expected: [String]) {
        #expect(schedule.validate() == expected)
    }

    @Test func out_of_range_minutes_and_skip_dates() {
        var bad = officeHours
        bad.start?.minutes = 1500
        var date = day("2026-02-28")
        date.day = 30
        let schedule = Schedule(name: "x", timeZone: zone(berlin), periods: [bad], skipDates: [date])
        #expect(schedule.validate() == [
            "schedule \"x\": period 1: start minute 1500 is outside 0..<1440",
            "schedule \"x\": skip date 2026-02-30 does not exist",
        ])
        // The invalid period is ignored by the evaluator.
        #expect(ScheduleEvaluator(schedule: schedule).desiredState(at: utc("2026-03-02T10:00:00Z")) == .undefined)
    }
}

// MARK: - Parsing

@Suite("Parsing")
struct ParsingTests {
    @Test(arguments: [
        ("07:30", Int?.some(450)), ("7:30", 450), ("19:05", 1145), ("00:00", 0), ("23:59", 1439),
        (" 08:00 ", 480), ("0:00", 0),
        ("24:00", nil), ("7:60", nil), ("07:5", nil), ("7", nil), ("", nil), ("007:30", nil),
        ("+7:30", nil), ("-1:30", nil), ("07:30:00", nil), ("ab:cd", nil), ("07.30", nil), ("٠٧:٣٠", nil),
    ])
    func minute_of_day(_ input: String, _ expected: Int?) {
        #expect(MinuteOfDay(parsing: input)?.minutes == expected, "\"\(input)\"")
    }

    @Test func minute_of_day_construction_and_description() throws {
        #expect(MinuteOfDay(hour: 7, minute: 5)?.description == "07:05")
        #expect(MinuteOfDay(hour: 19, minute: 0)?.description == "19:00")
        #expect(MinuteOfDay(hour: 24, minute: 0) == nil)
        #expect(MinuteOfDay(hour: 7, minute: 60) == nil)
        #expect(MinuteOfDay(hour: -1, minute: 0) == nil)
        #expect(MinuteOfDay(minutes: 1440) == nil)
        #expect(MinuteOfDay(minutes: -1) == nil)
        #expect(try #require(time("07:00")) < #require(time("19:00")))
    }

    @Test(arguments: [
        ("mon", Weekday?.some(.monday)), ("monday", .monday), ("Mon", .monday), ("MONDAY", .monday),
        ("tue", .tuesday), ("tues", .tuesday), ("wed", .wednesday), ("thu", .thursday), ("thurs", .thursday),
        ("fri", .friday), ("sat", .saturday), ("Sunday", .sunday), (" sun ", .sunday),
        ("funday", nil), ("mo", nil), ("", nil), ("1", nil), ("mondays", nil),
    ])
    func weekday(_ input: String, _ expected: Weekday?) {
        #expect(Weekday(parsing: input) == expected, "\"\(input)\"")
    }

    @Test func weekday_numbering_matches_calendar() {
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = .gmt
        let monday = utc("2026-03-02T12:00:00Z")
        #expect(Weekday(rawValue: calendar.component(.weekday, from: monday)) == .monday)
        #expect(day("2026-03-02").weekday == .monday)
        #expect(day("1970-01-01").weekday == .thursday)
        #expect(day("1969-12-28").weekday == .sunday)
    }

    @Test(arguments: [
        ("2026-12-25", "2026-12-25"), ("2028-02-29", "2028-02-29"), ("2000-02-29", "2000-02-29"),
        (" 2026-01-01 ", "2026-01-01"),
        ("2026-02-30", nil), ("2026-02-29", nil), ("1900-02-29", nil), ("2026-13-01", nil), ("2026-00-10", nil),
        ("2026-04-31", nil), ("2026-1-05", nil), ("26-12-25", nil), ("2026/12/25", nil), ("2026-12-25T00:00", nil),
        ("", nil), ("2026-12-+5", nil),
    ] as [(String, String?)])
    func local_date(_ input: String, _ expected: String?) {
        #expect(LocalDate(parsing: input)?.description == expected, "\"\(input)\"")
    }

    @Test func local_date_arithmetic_round_trips() {
        #expect(day("1970-01-01").daysSinceEpoch == 0)
        #expect(day("2026-03-02").daysSinceEpoch == 20514)
        #expect(LocalDate(daysSinceEpoch: -1).description == "1969-12-31")
        #expect(day("2028-02-28").adding(days: 1).description == "2028-02-29")
        #expect(day("2026-12-31").adding(days: 1).description == "2027-01-01")
        #expect(day("2026-12-24") < day("2026-12-25"))
        var failures: [String] = []
        for number in stride(from: -800_000, through: 800_000, by: 97) {
            let date = LocalDate(daysSinceEpoch: number)
            if !date.isValid || date.daysSinceEpoch != number { failures.append("\(number) → \(date)") }
        }
        #expect(failures == [])
    }

    @Test func codable_round_trip() throws {
        let original = SchedulePeriod(days: .nthWeekday(-1, .friday), start: time("07:30"), stop: time("19:05"))
        let data = try JSONEncoder().encode(original)
        let json = String(decoding: data, as: UTF8.self)
        #expect(json.contains("\"07:30\""))
        #expect(json.contains("\"19:05\""))
        #expect(try JSONDecoder().decode(SchedulePeriod.self, from: data) == original)

        let dates = try JSONDecoder().decode([LocalDate].self, from: Data(#"["2026-12-25","2028-02-29"]"#.utf8))
        #expect(dates.map(\.description) == ["2026-12-25", "2028-02-29"])
        #expect(throws: DecodingError.self) {
            try JSONDecoder().decode([LocalDate].self, from: Data(#"["2026-02-30"]"#.utf8))
        }
        #expect(throws: DecodingError.self) {
            try JSONDecoder().decode([MinuteOfDay].self, from: Data(#"["24:00"]"#.utf8))
        }
        #expect(ManualActionPolicy(rawValue: "boundaries-only") == .boundariesOnly)
        #expect(ScheduleMode(rawValue: "stop-only") == .stopOnly)
    }
}
