import Foundation
import PostgresNIO
import WardenCore

extension PostgresStateStore {
    /// Set-based: one statement records the listing (a pair unchanged keeps its clock, a new pair
    /// starts one at `now`), a second forgets the servers no longer listed.
    public func firstSeen(project: String, states: [ServerStateSighting], now: Date) async throws -> [String: Date] {
        // One sighting per server (the last), since one statement cannot update a row twice. An
        // empty task state stands for none (the column is part of the pair's identity).
        var latest: [String: ServerStateSighting] = [:]
        for state in states { latest[state.serverId] = state }
        let sightings = latest.values.sorted { $0.serverId < $1.serverId }
        let ids = sightings.map(\.serverId)
        let statuses = sightings.map(\.status)
        let tasks = sightings.map { $0.taskState ?? "" }
        return try await withTransaction { [self] connection in
            var result: [String: Date] = [:]
            if !ids.isEmpty {
                // Every sub-statement sees the snapshot from before the upsert: the rows it left
                // alone are read with their old clocks.
                for row in try await connection.rows(
                    """
                    WITH seen AS (SELECT * FROM unnest(\(ids)::text[], \(statuses)::text[], \(tasks)::text[]) AS s(server_id, status, task_state)),
                    changed AS (
                        INSERT INTO first_seen AS f (project, server_id, status, task_state, first_seen)
                        SELECT \(project), server_id, status, task_state, \(now.timeIntervalSince1970) FROM seen
                        ON CONFLICT (project, server_id) DO UPDATE SET status = EXCLUDED.status, task_state = EXCLUDED.task_state,
                            first_seen = EXCLUDED.first_seen
                        WHERE (f.status, f.task_state) IS DISTINCT FROM (EXCLUDED.status, EXCLUDED.task_state)
                        RETURNING f.server_id, f.first_seen)
                    SELECT server_id, first_seen FROM changed
                    UNION ALL
                    SELECT f.server_id, f.first_seen FROM first_seen f JOIN seen s USING (server_id)
                    WHERE f.project = \(project) AND f.status = s.status AND f.task_state = s.task_state
                    """, logger: logger)
                {
                    result[try row.value("server_id")] = try row.date("first_seen")
                }
            }
            // Servers no longer listed (deleted) or no longer in a watched state are forgotten.
            try await connection.run("DELETE FROM first_seen WHERE project = \(project) AND NOT (server_id = ANY(\(ids)::text[]))", logger: logger)
            return result
        }
    }
}
