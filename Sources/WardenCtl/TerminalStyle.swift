import Foundation

/// How `ctl` may draw: colour and bar glyphs on a terminal only (`NO_COLOR` turns colour off),
/// plain ASCII when the output is a pipe or a file, within a width.
public struct TerminalStyle: Sendable, Equatable {
    public enum Color: String, Sendable {
        case red = "31"
        case yellow = "33"
        case green = "32"
        case dim = "2"
        case bold = "1"
    }

    public var color: Bool
    public var glyphs: Bool
    public var width: Int

    public init(color: Bool, glyphs: Bool, width: Int) {
        self.color = color
        self.glyphs = glyphs
        self.width = max(40, width)
    }

    /// Plain text at a fixed width (pipes, files, golden tests).
    public static func plain(width: Int = 100) -> TerminalStyle { TerminalStyle(color: false, glyphs: false, width: width) }

    /// The style for standard output: colour and glyphs only on a terminal, colour only without
    /// `NO_COLOR` (any value, per no-color.org); the width from `COLUMNS` or the terminal.
    public static func detect(environment: [String: String] = ProcessInfo.processInfo.environment) -> TerminalStyle {
        let tty = isatty(STDOUT_FILENO) == 1
        var width = Int(environment["COLUMNS"] ?? "") ?? 0
        if width <= 0, tty {
            var size = winsize()
            if ioctl(STDOUT_FILENO, UInt(TIOCGWINSZ), &size) == 0 { width = Int(size.ws_col) }
        }
        return TerminalStyle(color: tty && environment["NO_COLOR"] == nil, glyphs: tty, width: width > 0 ? width : 100)
    }

    /// `text` in `color` when colour is on.
    public func paint(_ text: String, _ color: Color) -> String {
        self.color ? "\u{1B}[\(color.rawValue)m\(text)\u{1B}[0m" : text
    }

    /// A usage bar of `cells` cells for a ratio (clamped to 0…1 for drawing).
    public func bar(_ ratio: Double, cells: Int = 10) -> String {
        let filled = Int((min(max(ratio, 0), 1) * Double(cells)).rounded())
        return glyphs
            ? String(repeating: "█", count: filled) + String(repeating: "░", count: cells - filled)
            : "[" + String(repeating: "#", count: filled) + String(repeating: ".", count: cells - filled) + "]"
    }
}

/// Times as people read them next to a table: ages, countdowns, clock times in UTC.
public enum CtlTime {
    /// `45s`, `12m`, `3h20m`, `2d4h`.
    public static func span(_ seconds: Double) -> String {
        let total = Int(abs(seconds).rounded())
        if total < 60 { return "\(total)s" }
        if total < 3600 { return "\(total / 60)m" + (total % 60 == 0 || total >= 600 ? "" : "\(total % 60)s") }
        if total < 86_400 { return "\(total / 3600)h" + (total % 3600 / 60 == 0 ? "" : "\(total % 3600 / 60)m") }
        return "\(total / 86_400)d" + (total % 86_400 / 3600 == 0 ? "" : "\(total % 86_400 / 3600)h")
    }

    /// `12s ago` or `in 3m` relative to `now`; `-` for nil.
    public static func relative(_ date: Date?, now: Date) -> String {
        guard let date else { return "-" }
        let delta = date.timeIntervalSince(now)
        if abs(delta) < 1 { return "now" }
        return delta < 0 ? "\(span(delta)) ago" : "in \(span(delta))"
    }

    /// `2026-11-23 19:00:00Z`.
    public static func clock(_ date: Date) -> String { format(date, "yyyy-MM-dd HH:mm:ss'Z'") }

    /// `11-23 19:00:00` (UTC): a journal line's time.
    public static func timeOfDay(_ date: Date) -> String { format(date, "MM-dd HH:mm:ss") }

    static func format(_ date: Date, _ pattern: String) -> String {
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.timeZone = TimeZone(identifier: "UTC")
        formatter.dateFormat = pattern
        return formatter.string(from: date)
    }
}
