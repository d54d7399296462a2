import CMnemoSys
import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// The two systemd interfaces mnemod speaks: socket activation (`LISTEN_FDS`,
/// sd_listen_fds(3)) and readiness notification (`NOTIFY_SOCKET`, sd_notify(3)). Both are
/// plain environment-and-socket protocols, so no libsystemd is linked.
public enum Systemd {
    /// The first descriptor systemd passes (SD_LISTEN_FDS_START).
    static let firstListenFD: Int32 = 3

    /// The listening socket handed over by the service manager, if this process was
    /// socket-activated: `LISTEN_PID` names this process and `LISTEN_FDS` is 1. The
    /// variables are removed so that children do not inherit them.
    /// - Throws: when activation was meant for this process but is unusable (several
    ///   sockets, or one that is not a listening Unix stream socket).
    public static func inheritedListener() throws(SystemError) -> Int32? {
        let env = ProcessInfo.processInfo.environment
        guard let pid = env["LISTEN_PID"], Int32(pid) == getpid(), let count = env["LISTEN_FDS"] else { return nil }
        unsetenv("LISTEN_PID")
        unsetenv("LISTEN_FDS")
        unsetenv("LISTEN_FDNAMES")
        guard count == "1" else {
            throw SystemError(message: "socket activation passed LISTEN_FDS=\(count); mnemod takes exactly one Unix stream socket")
        }
        _ = fcntl(firstListenFD, F_SETFD, FD_CLOEXEC)
        return firstListenFD
    }

    /// Tells the service manager `state` (`READY=1`, `STOPPING=1`, `STATUS=...`); a no-op
    /// when not run under one. - Returns: whether it was sent.
    @discardableResult
    public static func notify(_ state: String) -> Bool {
        mnemo_sd_notify(state) == 1
    }
}
