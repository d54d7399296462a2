#include <stdio.h>
#include "CMnemoSys.h"

#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/un.h>
#include <unistd.h>

int mnemo_peercred(int fd, int *pid, unsigned *uid, unsigned *gid) {
    struct ucred cred;
    socklen_t len = sizeof(cred);
    if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0) return -1;
    *pid = cred.pid;
    *uid = cred.uid;
    *gid = cred.gid;
    return 0;
}

int mnemo_accept(int listen_fd) {
    return accept4(listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
}

void mnemo_set_thread_name(const char *name) {
    char buf[16];
    int i = 0;
    for (; name[i] && i < 15; i++) buf[i] = name[i];
    buf[i] = 0;
    pthread_setname_np(pthread_self(), buf);
}

int mnemo_unix_listener_path(int fd, char *path, int size) {
    int type = 0, listening = 0;
    socklen_t len = sizeof(type);
    if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &len) != 0) return -1;
    len = sizeof(listening);
    if (getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &listening, &len) != 0) return -1;
    struct sockaddr_un addr;
    memset(&addr, 0, sizeof(addr));
    len = sizeof(addr);
    if (getsockname(fd, (struct sockaddr *)&addr, &len) != 0) return -1;
    if (addr.sun_family != AF_UNIX || type != SOCK_STREAM || !listening) {
        errno = EINVAL;
        return -1;
    }
    size_t n = len > offsetof(struct sockaddr_un, sun_path) ? len - offsetof(struct sockaddr_un, sun_path) : 0;
    if (n == 0 || addr.sun_path[0] == 0) n = 0;  /* unnamed or abstract */
    else n = strnlen(addr.sun_path, n);
    if ((int)n >= size) n = (size_t)size - 1;
    memcpy(path, addr.sun_path, n);
    path[n] = 0;
    return 0;
}

int mnemo_sd_notify(const char *state) {
    const char *target = getenv("NOTIFY_SOCKET");
    if (!target || !target[0]) return 0;
    struct sockaddr_un addr;
    memset(&addr, 0, sizeof(addr));
    addr.sun_family = AF_UNIX;
    size_t n = strlen(target);
    if (n >= sizeof(addr.sun_path) || (target[0] != '/' && target[0] != '@')) {
        errno = EINVAL;
        return -1;
    }
    memcpy(addr.sun_path, target, n);
    if (target[0] == '@') addr.sun_path[0] = 0;  /* abstract namespace */
    int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return -1;
    socklen_t len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n);
    ssize_t sent = sendto(fd, state, strlen(state), MSG_NOSIGNAL, (struct sockaddr *)&addr, len);
    int saved = errno;
    close(fd);
    errno = saved;
    return sent < 0 ? -1 : 1;
}

int mnemo_rename_noreplace(int dir, const char *from, const char *to) {
    return renameat2(dir, from, dir, to, RENAME_NOREPLACE);
}
