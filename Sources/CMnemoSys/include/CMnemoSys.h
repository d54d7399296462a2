// Linux system interfaces that Swift's Glibc module does not export (epoll, eventfd,
// accept4, SO_PEERCRED's struct ucred, thread names, renameat2).
#ifndef CMNEMOSYS_H
#define CMNEMOSYS_H

#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <pthread.h>

/// Reads the peer credentials of a connected Unix socket; 0 on success, -1 with errno.
int mnemo_peercred(int fd, int *pid, unsigned *uid, unsigned *gid);

/// accept4 with SOCK_NONBLOCK | SOCK_CLOEXEC.
int mnemo_accept(int listen_fd);

/// Names the calling thread (at most 15 bytes are kept).
void mnemo_set_thread_name(const char *name);

/// Checks that `fd` is a listening AF_UNIX stream socket (one handed over by systemd) and
/// copies its path into `path` (empty for an abstract or unnamed socket).
/// Returns 0 on success, -1 with errno (ENOTSOCK, EINVAL for another kind of socket).
int mnemo_unix_listener_path(int fd, char *path, int size);

/// Sends `state` (e.g. "READY=1") to the service manager's $NOTIFY_SOCKET, as sd_notify(3)
/// does. Returns 1 when sent, 0 when there is no $NOTIFY_SOCKET, -1 with errno on failure.
int mnemo_sd_notify(const char *state);

/// renameat2(RENAME_NOREPLACE): moves `from` to `to` (both relative to `dir`) unless `to`
/// exists (then -1 with EEXIST). Returns 0 on success, -1 with errno.
int mnemo_rename_noreplace(int dir, const char *from, const char *to);

#endif
