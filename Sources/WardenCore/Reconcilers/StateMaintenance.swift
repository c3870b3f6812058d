import Foundation

/// Keeps the state store within its retention limits: old journal entries, quota samples,
/// transitions, expired snoozes and closed jobs are removed; open intents never are.
public final class StateMaintenance: Reconciler {
    public let name = LoopName.maintenance.rawValue
    let context: WardenContext

    public init(context: WardenContext) {
        self.context = context
    }

    public func reconcile(now: Date) async throws -> ReconcileReport {
        try await context.store.prune(now: now)
        let last = try await context.store.lastSequence()
        return ReconcileReport(summary: "pruned to retention; journal at sequence \(last)")
    }
}
