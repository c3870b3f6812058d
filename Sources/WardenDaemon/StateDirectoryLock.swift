import Foundation
import Synchronization

#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#endif

/// Why the daemon could not start, said in one line that names the address or path and the
/// operating system's reason.
enum StartupError: Error, CustomStringConvertible {
    /// A listener could not be bound.
    case cannotListen(kind: String, address: String, reason: String)
    /// The state directory could not be created or opened.
    case stateDirectoryUnusable(path: String, what: String, reason: String)
    /// Another ecs-warden process holds the state directory's lock.
    case stateDirectoryInUse(path: String, lockFile: String, pid: Int32?)
    /// The shared state database (cluster mode) could not be opened.
    case stateDatabaseUnusable(location: String, reason: String)

    var description: String {
        switch self {
        case .cannotListen(let kind, let address, let reason):
            return "cannot listen on \(address) (\(kind)): \(reason)"
        case .stateDirectoryUnusable(let path, let what, let reason):
            return "\(what) \(path): \(reason)"
        case .stateDirectoryInUse(let path, let lockFile, let pid):
            let holder = pid.map { "pid \($0)" } ?? "a process whose pid is not written yet"
            return "the state directory \(path) is in use by another ecs-warden (\(holder); lock \(lockFile))"
        case .stateDatabaseUnusable(let location, let reason):
            return "cannot open the state database \(location): \(reason)"
        }
    }

    /// `Address already in use (errno 98)`.
    static func reason(errno code: Int32) -> String {
        "\(String(cString: strerror(code))) (errno \(code))"
    }
}

/// An exclusive lock on a state directory, held for the life of the process, so two ecs-warden
/// processes never work on one store (two schedulers would each act on every boundary).
///
/// `<state-dir>/ecs-warden.lock` is locked with a non-blocking `flock(LOCK_EX)` before the store is
/// opened, and the holder's pid is written into it for the message a second process prints. The
/// kernel drops the lock when the process ends, however it ends (also `kill -9`), so a stale file
/// never blocks a restart; the file itself is left in place (removing it would race a starting
/// process).
final class StateDirectoryLock: Sendable {
    /// The lock file's name inside the state directory.
    static let fileName = "ecs-warden.lock"

    /// The locked state directory.
    let directory: String
    /// The lock file.
    let path: String
    private let descriptor: Mutex<Int32>

    private init(directory: String, path: String, descriptor: Int32) {
        self.directory = directory
        self.path = path
        self.descriptor = Mutex(descriptor)
    }

    deinit { release() }

    /// Creates the state directory if needed (mode 0700) and takes its lock, or throws a
    /// `StartupError` saying which directory is unusable or held by which pid. Never waits.
    static func acquire(directory: String) throws(StartupError) -> StateDirectoryLock {
        try createDirectory(directory)
        let path = (directory as NSString).appendingPathComponent(fileName)
        let fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o600)
        guard fd >= 0 else {
            throw .stateDirectoryUnusable(path: directory, what: "cannot open the lock file in the state directory", reason: StartupError.reason(errno: errno))
        }
        guard flock(fd, LOCK_EX | LOCK_NB) == 0 else {
            let code = errno
            let holder = readPid(fd)
            close(fd)
            if code == EWOULDBLOCK { throw .stateDirectoryInUse(path: directory, lockFile: path, pid: holder) }
            throw .stateDirectoryUnusable(path: directory, what: "cannot lock the state directory", reason: StartupError.reason(errno: code))
        }
        let pid = Array("\(getpid())\n".utf8)
        let written = pid.withUnsafeBytes { pwrite(fd, $0.baseAddress, $0.count, 0) }
        if written != pid.count || ftruncate(fd, off_t(pid.count)) != 0 {
            let code = errno
            close(fd)
            throw .stateDirectoryUnusable(path: directory, what: "cannot write the lock file in the state directory", reason: StartupError.reason(errno: code))
        }
        return StateDirectoryLock(directory: directory, path: path, descriptor: fd)
    }

    /// Releases the lock (closing the file). Idempotent; also done when the process ends.
    func release() {
        let fd = descriptor.withLock { fd -> Int32 in
            defer { fd = -1 }
            return fd
        }
        if fd >= 0 { close(fd) }
    }

    /// The pid the holder wrote, if any.
    private static func readPid(_ fd: Int32) -> Int32? {
        var buffer = [UInt8](repeating: 0, count: 32)
        let count = buffer.withUnsafeMutableBytes { pread(fd, $0.baseAddress, $0.count, 0) }
        guard count > 0 else { return nil }
        return Int32(String(decoding: buffer[0..<count], as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines))
    }

    /// `mkdir -p` with mode 0700, reporting the OS reason of the first component that fails.
    private static func createDirectory(_ directory: String) throws(StartupError) {
        var info = stat()
        if stat(directory, &info) == 0 {
            guard info.st_mode & S_IFMT == S_IFDIR else {
                throw .stateDirectoryUnusable(path: directory, what: "cannot use the state directory", reason: StartupError.reason(errno: ENOTDIR))
            }
            return
        }
        var current = directory.hasPrefix("/") ? "" : "."
        for component in directory.split(separator: "/") {
            current += "/" + component
            guard mkdir(current, 0o700) != 0 else { continue }
            let code = errno
            if code == EEXIST, stat(current, &info) == 0, info.st_mode & S_IFMT == S_IFDIR { continue }
            throw .stateDirectoryUnusable(
                path: directory, what: "cannot create the state directory", reason: StartupError.reason(errno: code == EEXIST ? ENOTDIR : code))
        }
    }
}
