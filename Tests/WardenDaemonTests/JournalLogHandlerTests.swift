import Foundation
import Testing

@testable import WardenDaemon

/// Text that came from outside (an endpoint's error message, a server name) cannot forge a log
/// line of its own.
@Suite struct JournalLogHandlerTests {
    @Test func controlCharactersAreEscaped() {
        #expect(JournalLogHandler.escaped("refused: boom\n<0>emerg: forged") == #"refused: boom\n<0>emerg: forged"#)
        #expect(JournalLogHandler.escaped("a\r\tb\u{1B}[31m\u{7F}\u{2028}") == #"a\r\tb\u{1B}[31m\u{7F}\u{2028}"#)
        #expect(JournalLogHandler.escaped("plain text, ünïcödé, 服务器") == "plain text, ünïcödé, 服务器")
    }
}
