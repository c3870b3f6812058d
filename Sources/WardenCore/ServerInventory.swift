import ECSAPI
import Foundation
import Synchronization

/// A short-lived reading of each project's servers shared by the loops that list them, so the
/// schedule and stuck-task loops do not list a 100,000-server fleet twice (100 pages each) when
/// their passes meet.
///
/// The schedule loop always reads afresh (its plan must see the servers as they are at the
/// boundary) and leaves its reading here; the stuck-task loop takes a reading up to `maxAge` old,
/// or joins one in progress. A reading's age counts from the end of its read: the read of a
/// million-server fleet outlasts `maxAge`, and the loop that comes right after must still share it
/// rather than list the fleet again. (The read's length is measured on the monotonic clock, the
/// age on the loops' clock: the same time in the daemon, not under a test's manual clock.) Only the servers some loop looks at are kept — those carrying
/// the schedule tag and those the stuck rules watch — and only until they are older than `maxAge`,
/// in compact form (`CompactServer`, about a third of a `Server`'s memory), from the fast listing
/// decoder (`ECSClient.serverListing`).
/// Acting never uses it: the scheduler re-reads the servers just before every call.
public final class ServerInventory: Sendable {
    /// How old a shared reading may be for a loop that accepts one.
    public let maxAge: TimeInterval
    private let readings = Mutex<[String: Reading]>([:])

    private struct Reading: Sendable {
        var readAt: Date
        /// How long the read took, once it has ended (nil while it runs).
        var duration: TimeInterval?
        var task: Task<[CompactServer], any Error>

        /// In progress, or ended at most `maxAge` before `now`.
        func isShareable(at now: Date, maxAge: TimeInterval) -> Bool {
            guard let duration else { return true }
            return now.timeIntervalSince(readAt) - duration <= maxAge
        }
    }

    /// - Parameter maxAge: how old a shared reading may be (0 shares only reads in progress).
    public init(maxAge: TimeInterval = 15) {
        self.maxAge = maxAge
    }

    /// The servers of `project` some loop looks at under `settings` (`listedServerFilter`): a fresh
    /// read when `fresh` (left here for the other loops), otherwise a reading at most `maxAge` old
    /// or the one in progress.
    public func servers(of project: WardenProject, fresh: Bool, now: Date, settings: WardenSettings) async throws -> [Server] {
        try await compactServers(of: project, fresh: fresh, now: now, settings: settings).map(\.server)
    }

    /// `servers(of:fresh:now:settings:)` in the compact form the reading is kept in (the same
    /// storage as the shared reading: keeping it costs no more memory while the reading is shared).
    public func compactServers(of project: WardenProject, fresh: Bool, now: Date, settings: WardenSettings) async throws -> [CompactServer] {
        let key = Self.key(project)
        let keep = settings.listedServerFilter
        let task: Task<[CompactServer], any Error> = readings.withLock { readings in
            // Drop what has aged out, so a quiet daemon does not hold the fleet between passes.
            readings = readings.filter { $0.value.isShareable(at: now, maxAge: maxAge) }
            if !fresh, let reading = readings[key] { return reading.task }
            let client = project.client
            let task = Task<[CompactServer], any Error> {
                let started = ContinuousClock.now
                var kept: [CompactServer] = []
                var sharing = CompactServer.Sharing()
                for try await page in client.serverListing() {
                    // By position: iterating would copy every server (a retain per field) only to drop most.
                    for index in page.indices where keep(page[index]) { kept.append(CompactServer(page[index], sharing: &sharing)) }
                }
                // Kept until the reading ages out (and as the scheduler's last reading): in an array
                // of exactly its size, not the up-to-double capacity appending left.
                kept = kept.withUnsafeBufferPointer { Array($0) }
                let took = ContinuousClock.now - started
                let seconds = Double(took.components.seconds) + Double(took.components.attoseconds) / 1e18
                self.readings.withLock { readings in
                    if readings[key]?.readAt == now { readings[key]?.duration = seconds }
                }
                return kept
            }
            readings[key] = Reading(readAt: now, duration: nil, task: task)
            return task
        }
        do {
            // The read runs in a task of its own (shared); a cancelled caller (shutdown past its
            // grace) cancels it rather than waiting for the listing to end.
            return try await withTaskCancellationHandler {
                try await task.value
            } onCancel: {
                task.cancel()
            }
        } catch {
            // A failed read is never shared.
            readings.withLock { readings in
                if let reading = readings[key], reading.readAt == now { readings[key] = nil }
            }
            throw error
        }
    }

    /// Forgets every reading (a reload may change projects, endpoints or tag keys).
    public func clear() {
        readings.withLock { $0.removeAll() }
    }

    private static func key(_ project: WardenProject) -> String {
        "\(project.name)\u{1F}\(project.projectId)\u{1F}\(project.region)"
    }
}

extension WardenSettings {
    /// The servers the listing loops look at: carrying the schedule tag (schedule loop) or watched
    /// by the stuck rules (stuck-task loop).
    public var listedServerFilter: @Sendable (Server) -> Bool {
        let scheduleKey = tags.schedule
        let rules = stuck
        // A server listed without its `tags` field is kept too: the scheduler must see it to refuse
        // a listing that cannot tell tagged servers from untagged ones.
        return { server in server.tags == nil || server.tagValue(scheduleKey) != nil || rules.watches(server) }
    }
}
