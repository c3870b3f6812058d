import Foundation

/// Reads secrets from files, the environment or systemd credentials. Values are never logged.
public struct SecretResolver: Sendable {
    let environment: [String: String]

    public init(environment: [String: String] = ProcessInfo.processInfo.environment) {
        self.environment = environment
    }

    /// Why a secret could not be read. Names the source, never the value.
    public struct Failure: Error, CustomStringConvertible {
        public var description: String
    }

    /// The secret's value, surrounding whitespace and the trailing newline removed.
    public func resolve(_ source: SecretSource) throws -> String {
        let value: String
        switch source {
        case .environment(let name):
            guard let found = environment[name], !found.isEmpty else { throw Failure(description: "environment variable \(name) is not set") }
            value = found
        case .credential(let name):
            guard let directory = environment["CREDENTIALS_DIRECTORY"], !directory.isEmpty else {
                throw Failure(description: "systemd credential \(name) requested but $CREDENTIALS_DIRECTORY is not set (LoadCredential= in the unit)")
            }
            // A name, never a path out of the directory (the configuration refuses one too).
            guard !name.contains("/"), name != ".", name != ".." else {
                throw Failure(description: "systemd credential '\(name)' is not a file name in $CREDENTIALS_DIRECTORY")
            }
            // systemd owns these files and sets their modes (0400 or 0440): no mode check here.
            value = try read((directory as NSString).appendingPathComponent(name), source: source)
        case .file(let path):
            let attributes: [FileAttributeKey: Any]
            do {
                attributes = try FileManager.default.attributesOfItem(atPath: path)
            } catch {
                throw Failure(description: "secret file \(path) cannot be read: \(error.localizedDescription)")
            }
            let mode = (attributes[.posixPermissions] as? NSNumber)?.intValue ?? 0o777
            guard mode & 0o077 == 0 else {
                throw Failure(description: "secret file \(path) has mode \(String(mode, radix: 8)); it must be readable by its owner only (chmod 600)")
            }
            // Owned by the daemon's user or root: a file another user owns could be swapped by them.
            let owner = (attributes[.ownerAccountID] as? NSNumber)?.uint32Value ?? UInt32.max
            guard owner == geteuid() || owner == 0 else {
                throw Failure(description: "secret file \(path) is owned by uid \(owner); it must be owned by root or by the daemon's user (uid \(geteuid()))")
            }
            // Its directory must not let others replace it.
            let directory = (path as NSString).deletingLastPathComponent
            if let folder = try? FileManager.default.attributesOfItem(atPath: directory.isEmpty ? "." : directory),
                let folderMode = (folder[.posixPermissions] as? NSNumber)?.intValue, folderMode & 0o022 != 0, folderMode & 0o1000 == 0
            {
                throw Failure(
                    description: "secret file \(path) is in \(directory), which others may write (mode \(String(folderMode, radix: 8))); keep secrets in a directory only its owner writes")
            }
            value = try read(path, source: source)
        }
        let trimmed = value.trimmingCharacters(in: .whitespacesAndNewlines)
        guard !trimmed.isEmpty else { throw Failure(description: "\(source) is empty") }
        return trimmed
    }

    private func read(_ path: String, source: SecretSource) throws -> String {
        do {
            return try String(contentsOfFile: path, encoding: .utf8)
        } catch {
            throw Failure(description: "\(source) cannot be read: \(error.localizedDescription)")
        }
    }
}
