import Foundation
import WardenCore

// The JSON bodies of the control API (described by `docs/control-api.yaml`), shared by the routes
// that encode them and by `ecs-warden ctl`, which decodes them: one definition of each.

public struct LoopView: Codable, Sendable, Equatable {
    public var name: String
    public var alive: Bool
    public var paused: Bool
    public var running: Bool
    public var intervalSeconds: Double
    public var deadlineSeconds: Double
    public var lastSuccess: Date?
    public var lastFinished: Date?
    public var lastResult: String?
    public var lastError: String?
    public var lastSummary: String?
    public var lastDurationSeconds: Double?
    public var consecutiveFailures: Int
    public var passes: Int
    public var failures: Int
    public var nextPassAt: Date?

    public init(_ status: Supervisor.LoopStatus) {
        name = status.name
        alive = status.alive
        paused = status.paused
        running = status.passStartedAt != nil
        intervalSeconds = status.interval
        deadlineSeconds = status.deadline
        lastSuccess = status.lastSuccess
        lastFinished = status.lastFinished
        lastResult = status.lastResult
        lastError = status.lastError
        lastSummary = status.lastSummary
        lastDurationSeconds = status.lastDuration
        consecutiveFailures = status.consecutiveFailures
        passes = status.passes
        failures = status.failures
        nextPassAt = status.nextPassAt
    }
}

public struct StatusView: Codable, Sendable, Equatable {
    public var version: String
    public var dryRun: Bool
    public var summary: String
    public var projects: [String]
    public var loops: [LoopView]
}

public struct ScheduleView: Codable, Sendable, Equatable {
    public var name: String
    public var timezone: String
    public var mode: String
    public var manualActions: String
    public var dryRun: Bool
    public var desiredState: String
    public var nextBoundary: Date?
    public var nextAction: String?
    public var servers: [String: Int]
}

public struct BatchView: Codable, Sendable, Equatable {
    public var project: String
    public var schedule: String
    public var action: String
    public var servers: [String]
    public var boundary: Date?
    public var dryRun: Bool
    public var retryOf: Int64?
    /// The servers' names, in the order of `servers` (empty where the plan did not know them).
    public var serverNames: [String]?
    /// Servers of a start whose start is at risk (the start preflight): server id → why.
    public var atRisk: [String: String]?

    public init(_ batch: AutoStopPlan.Batch, serverNames: [String] = [], atRisk: [String: String] = [:]) {
        project = batch.project
        schedule = batch.schedule
        action = batch.action.rawValue
        servers = batch.serverIds
        boundary = batch.boundary
        dryRun = batch.dryRun
        retryOf = batch.retryOf
        self.serverNames = serverNames.isEmpty ? nil : serverNames
        self.atRisk = atRisk.isEmpty ? nil : atRisk
    }
}

public struct SkipView: Codable, Sendable, Equatable {
    public var project: String
    public var serverId: String
    public var schedule: String?
    public var reason: String
    public var detail: String
}

public struct PlanStepView: Codable, Sendable, Equatable {
    public var at: Date
    public var batches: [BatchView]
    public var skipped: [SkipView]
}

public struct JobRegistration: Codable, Sendable, Equatable {
    public var project: String
    public var jobId: String
}

public struct SnoozeRequest: Codable, Sendable, Equatable {
    public var project: String
    public var serverId: String
    /// ISO 8601 (`2026-11-24T08:00:00Z`) or the tag form (`20261124T0800Z`).
    public var until: String
    public var reason: String?
}

public struct SnoozeView: Codable, Sendable, Equatable {
    public var project: String
    public var serverId: String
    public var until: Date
    public var reason: String
}

/// `GET /v1/savings`: what the schedules saved over a period, per schedule and flavor.
public struct SavingsView: Codable, Sendable, Equatable {
    public var since: Date
    public var until: Date
    public var totals: [SavingsTotal]
}
