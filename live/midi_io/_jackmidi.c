/* _jackmidi: MIDI ports on one JACK client, with no Python in JACK's process thread.
 *
 * python-rtmidi's JACK API opens one JACK client per port and offers its input only as a queue
 * to poll (or a Python callback in JACK's real-time thread, which the house forbids). This
 * module gives one client any number of MIDI ports and a process callback written in C:
 *
 *   input  port -> the process callback copies each event, stamped with jack_get_time() (moved
 *                  to time.perf_counter's clock when read), into the port's ring buffer and
 *                  then wakes a thread asleep in wait_for_input() (the daemon's loop, which
 *                  reads the rings itself) by a byte on its socket, or else writes 1 to one
 *                  eventfd that every client of the process shares (wake_fd()), where a Python
 *                  thread, the input waker, sleeps and reads the rings.
 *   output port -> Python writes messages into the port's ring buffer; the next process cycle
 *                  clears the port's buffer and copies them in, at frame 0, in order.
 *
 * A port's slot is handed to the process callback by an atomic store of its state, and taken
 * back the same way: Python stores the new state, then waits until every cycle that may have
 * started before the store has finished (the 'started' and 'finished' counters). The callback
 * never locks, never allocates and never calls Python.
 *
 * Two locks on Python's side, never held while Python objects are made (a garbage collection
 * there could run a finalizer that closes a port of the same client): 'api' for what changes a
 * client's structure or asks the server (opening and closing ports and the client, listing,
 * connecting), held across server calls; 'data' for the rings and slot states, held only for
 * copying bytes, so a port opening or closing never holds up another port's messages.
 * Lock order: api, then data. Both are recursive.
 *
 * Units: stamps in seconds (double), from jack_get_time()'s microseconds.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <errno.h>
#include <jack/jack.h>
#include <jack/midiport.h>
#include <jack/ringbuffer.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <poll.h>
#include <sched.h>
#include <sys/socket.h>
#include <sys/eventfd.h>
#include <time.h>
#include <sys/types.h>
#include <unistd.h>

#define MAX_PORTS 32
#define RING_BYTES (1 << 16) /* per port; a message longer than a ring's space is dropped, counted */
#define MAX_OUTPUT_MESSAGE 16384 /* bytes; longer ones are refused (JACK's MIDI buffer holds 32 KiB a cycle) */
#define WAIT_CYCLE_SECONDS 1.0 /* how long a closing port waits for a running cycle to end */
#define SYNCHRO_TRIES 6 /* opens of one client while libjack holds a departed client's synchronisation */

enum { SLOT_FREE = 0, SLOT_ACTIVE = 1, SLOT_DRAINING = 2, SLOT_CLOSING = 3, SLOT_LEAKED = 4 };

typedef struct {
    uint32_t size;   /* bytes that follow */
    double stamp;    /* seconds, jack_get_time() (inputs only) */
} header_t;

typedef struct {
    jack_port_t *port;
    jack_ringbuffer_t *ring;
    int is_input;
    atomic_int state;           /* SLOT_*: what the process callback may do with this slot */
    atomic_ulong dropped;       /* input: events that did not fit the ring; output: messages no cycle could take */
} slot_t;

typedef struct {
    PyObject_HEAD
    jack_client_t *jack;
    pthread_mutex_t api;        /* structure and server calls (see the top of the file) */
    pthread_mutex_t data;       /* rings and slot states, briefly */
    pid_t pid;                  /* the process that opened it (a forked child must not use it) */
    slot_t slots[MAX_PORTS];
    atomic_ulong started;       /* process cycles begun */
    atomic_ulong finished;      /* process cycles ended */
    atomic_int dead;            /* the server shut this client down */
} Client;

static int wake = -1; /* the process's eventfd */

/* libjack keeps one table of a process's clients and one flag, "the server runs". Any client's
 * notification thread clears that flag when its connection fails: a client the server shut
 * down, a client of a server that died, and even a client whose open the server refused (its
 * thread may read the refusal's hang-up before the open returns). The next jack_client_open in
 * the process, whoever makes it, then closes and deletes every client in the table ("Jack server
 * was closed but clients are still allocated, cleanup..."), live ones included, and any later
 * call on one of them touches freed memory. So before any open, whenever libjack may be in that
 * state, we close every client of ours ourselves (reset_all): their ports go down, and the
 * supervisor registers them again. That is when one of ours was told its server shut down or an
 * open failed (reset_needed), or when a server call on a client of ours fails (the flag is
 * cleared, or its server is gone). With no client of ours left in libjack's table, its cleanup
 * finds nothing of ours to free. */
#define MAX_CLIENTS 256
static pthread_mutex_t registry_lock = PTHREAD_MUTEX_INITIALIZER;
static void *registry[MAX_CLIENTS]; /* Client*: every open client of this process */
static atomic_int reset_needed;
static atomic_int libjack_cleaned;        /* libjack deleted its clients during an open (see on_jack_error) */
static atomic_ulong resets;               /* how many times reset_all ran before an open */
static const char *_Atomic reset_reason;  /* why, the last time (a static string) */

static atomic_ulong arrivals; /* how many times signal_wake ran: a thread busy with other work
                               * can see that input waits without a wake-up (arrivals()) */

/* Threads sleeping in wait_for_input(): the descriptor each asked to be written to (-1: free).
 * While one sleeps there, input wakes it straight from the process callback, and it hands the
 * input over itself (drain), instead of the input waker doing so and then waking it: one
 * thread's wake-up less between a note and the loop that answers it. */
#define MAX_WAITERS 8
static atomic_int waiters[MAX_WAITERS] = {-1, -1, -1, -1, -1, -1, -1, -1};
static atomic_int signalling; /* process callbacks inside signal_wake now: a waiter that leaves
                               * waits for them, so none writes to its descriptor afterwards
                               * (closed by then, its number maybe another file's) */

static void signal_wake(void) {
    uint64_t one = 1;
    char byte = 1;
    int woken = 0;
    atomic_fetch_add(&signalling, 1);
    atomic_fetch_add(&arrivals, 1);
    for (int i = 0; i < MAX_WAITERS; i++) {
        int fd = atomic_load(&waiters[i]);
        if (fd >= 0) {
            /* a socket (live.midi_io.wake.Wake); EAGAIN: already woken */
            ssize_t ignored = send(fd, &byte, 1, MSG_DONTWAIT | MSG_NOSIGNAL);
            (void)ignored;
            woken = 1;
        }
    }
    atomic_fetch_sub(&signalling, 1);
    if (!woken) {
        ssize_t ignored = write(wake, &one, sizeof one); /* EAGAIN: already signalled enough */
        (void)ignored;
    }
}

/* -- the process thread (no locks, no allocation, no Python) --------------------------------- */

static void take_input(slot_t *slot, jack_nframes_t nframes, double now, int *any) {
    void *buffer = jack_port_get_buffer(slot->port, nframes);
    uint32_t count = jack_midi_get_event_count(buffer);
    for (uint32_t i = 0; i < count; i++) {
        jack_midi_event_t event;
        if (jack_midi_event_get(&event, buffer, i) != 0 || event.size == 0)
            continue;
        header_t header = {(uint32_t)event.size, now};
        if (jack_ringbuffer_write_space(slot->ring) < sizeof header + event.size) {
            atomic_fetch_add(&slot->dropped, 1);
            continue;
        }
        jack_ringbuffer_write(slot->ring, (const char *)&header, sizeof header);
        jack_ringbuffer_write(slot->ring, (const char *)event.buffer, event.size);
        *any = 1;
    }
}

static void give_output(slot_t *slot, jack_nframes_t nframes, int state) {
    void *buffer = jack_port_get_buffer(slot->port, nframes);
    jack_midi_clear_buffer(buffer);
    if (state != SLOT_ACTIVE)
        return; /* draining: an empty buffer, so nothing stale is sent again */
    header_t header;
    int written = 0;
    while (jack_ringbuffer_peek(slot->ring, (char *)&header, sizeof header) == sizeof header) {
        if (jack_ringbuffer_read_space(slot->ring) < sizeof header + header.size)
            break; /* the writer is between the header and the bytes */
        if (header.size > jack_midi_max_event_size(buffer)) {
            if (written)
                break; /* this cycle's buffer is full: the rest goes next cycle */
            /* too long for an empty buffer: it would block the port for good; dropped, counted */
            jack_ringbuffer_read_advance(slot->ring, sizeof header + header.size);
            atomic_fetch_add(&slot->dropped, 1);
            continue;
        }
        jack_midi_data_t *out = jack_midi_event_reserve(buffer, 0, header.size);
        if (out == NULL)
            break;
        jack_ringbuffer_read_advance(slot->ring, sizeof header);
        jack_ringbuffer_read(slot->ring, (char *)out, header.size);
        written = 1;
    }
}

static int process(jack_nframes_t nframes, void *arg) {
    Client *client = arg;
    atomic_fetch_add(&client->started, 1);
    double now = jack_get_time() / 1e6;
    int any = 0;
    for (int i = 0; i < MAX_PORTS; i++) {
        slot_t *slot = &client->slots[i];
        int state = atomic_load(&slot->state);
        if (state != SLOT_ACTIVE && state != SLOT_DRAINING)
            continue;
        if (!slot->is_input)
            give_output(slot, nframes, state);
        else if (state == SLOT_ACTIVE)
            take_input(slot, nframes, now, &any);
    }
    atomic_fetch_add(&client->finished, 1);
    if (any)
        signal_wake();
    return 0;
}

static void on_shutdown(void *arg) {
    Client *client = arg;
    atomic_store(&client->dead, 1);
    atomic_store(&reset_needed, 1);
    signal_wake();
}

/* libjack's error messages, printed as its default handler does. One of them says that libjack is
 * deleting every client of the process (a server death between our last check and an open):
 * those clients must then never be closed again (see 'forget_all'). */
static void on_jack_error(const char *message) {
    if (strstr(message, "clients are still allocated") != NULL)
        atomic_store(&libjack_cleaned, 1);
    fprintf(stderr, "%s\n", message);
    fflush(stderr);
}

static void registry_set(void *client, void *value) {
    pthread_mutex_lock(&registry_lock);
    for (int i = 0; i < MAX_CLIENTS; i++)
        if (registry[i] == client) {
            registry[i] = value;
            break;
        }
    pthread_mutex_unlock(&registry_lock);
}

/* -- Python's side ---------------------------------------------------------------------------- */

static int before_open(void);
static void forget_all(void);

static PyObject *JackError; /* _jackmidi.JackError(RuntimeError) */

/* Take a lock, without holding the GIL while waiting for it. */
static void take(pthread_mutex_t *mutex) {
    if (pthread_mutex_trylock(mutex) == 0)
        return;
    Py_BEGIN_ALLOW_THREADS
    pthread_mutex_lock(mutex);
    Py_END_ALLOW_THREADS
}

static void init_recursive(pthread_mutex_t *mutex) {
    pthread_mutexattr_t attr;
    pthread_mutexattr_init(&attr);
    pthread_mutexattr_settype(&attr, PTHREAD_MUTEX_RECURSIVE);
    pthread_mutex_init(mutex, &attr);
    pthread_mutexattr_destroy(&attr);
}

/* Whether libjack may be asked about this client: open, its server alive, opened in this process. */
static int live(Client *self) {
    return self->jack != NULL && !atomic_load(&self->dead) && self->pid == getpid();
}

/* For calls that ask the server (api held): 0, or -1 with JackError set. */
static int check_live(Client *self) {
    if (live(self))
        return 0;
    PyErr_SetString(JackError, self->jack == NULL ? "the JACK client is closed"
                               : self->pid != getpid() ? "the JACK client was opened by another process"
                               : "the JACK server shut this client down");
    return -1;
}

/* Why slot 'index' cannot be read (want_input 1) or written (0) now, or NULL if it can (data held). */
static const char *slot_problem(Client *self, int index, int want_input) {
    if (index < 0 || index >= MAX_PORTS || atomic_load(&self->slots[index].state) != SLOT_ACTIVE)
        return "no open port in that slot";
    if (self->slots[index].is_input != want_input)
        return want_input ? "that slot holds an output port" : "that slot holds an input port";
    return NULL;
}

/* Wait (GIL released, api held) until every cycle that began before now has ended.
 * Returns 0 when it did (or the server is gone), -1 when a cycle hung past WAIT_CYCLE_SECONDS. */
static int wait_cycle(Client *self) {
    unsigned long target = atomic_load(&self->started);
    struct timespec pause = {0, 200000};
    for (double waited = 0; atomic_load(&self->finished) < target; waited += 0.0002) {
        if (atomic_load(&self->dead))
            return 0;
        if (waited > WAIT_CYCLE_SECONDS)
            return -1;
        nanosleep(&pause, NULL);
    }
    return 0;
}

/* jack2's libjack also keeps, per process, a table of the synchronisation primitive (a futex in
 * a shared-memory file, /dev/shm/jack_sem.*) of every client of the server, indexed by the
 * server's client number. Each client's notification thread maps a primitive when a client
 * arrives and unmaps it when the client leaves, except while that notified client's own open is
 * still under way (libjack 1.9.21 and 1.9.22 skip the unmapping then: its control block is not
 * mapped yet). A client that leaves during the first open of a process thus stays in the table,
 * and the next client to get its number, ours or another program's, finds the number "already
 * connected": to the departed client's futex, which no server signals. A client of ours so opened
 * never runs (a synchronous server stalls on it: "Driver is not running"); another program's that
 * we feed is never woken. Seen on server restarts, when another program's client closed during our
 * open (programs reconnect at once then). libjack empties one entry when its own client closes,
 * and the whole table when the process's last client closes. So after an open, before
 * activating, we read what the process has mapped (/proc/self/maps): if the new client's own file
 * is not mapped, or (the first client of ours) a departed client's file stays mapped that was not
 * mapped before the open (python-rtmidi's wheels carry a libjack of their own, with a table of
 * its own), the client is closed and opened again. */
#define MAX_DEPARTED 64
typedef struct {
    int any;                             /* libjack's synchronisation files are mapped here (jack2 on Linux) */
    int own;                             /* the file named by the tail asked for is mapped */
    int departed;                        /* files unlinked since (their clients left) still mapped */
    unsigned long inodes[MAX_DEPARTED];  /* theirs */
} synchro_view_t;

static void synchro_view(const char *own_tail, synchro_view_t *view) {
    memset(view, 0, sizeof *view);
    FILE *maps = fopen("/proc/self/maps", "re");
    if (maps == NULL)
        return;
    static const char deleted[] = " (deleted)";
    size_t tail = strlen(own_tail), mark = sizeof deleted - 1;
    char line[1024];
    while (fgets(line, sizeof line, maps) != NULL) {
        char *name = strstr(line, "/dev/shm/");
        if (name == NULL)
            continue;
        name += strlen("/dev/shm/");
        if (strncmp(name, "sem.", 4) == 0) /* a build on POSIX semaphores */
            name += 4;
        if (strncmp(name, "jack_sem.", 9) != 0)
            continue;
        size_t len = strcspn(name, "\n");
        name[len] = '\0';
        view->any = 1;
        if (len > mark && strcmp(name + len - mark, deleted) == 0) {
            unsigned long inode = 0;
            if (view->departed < MAX_DEPARTED && sscanf(line, "%*s %*s %*s %*s %lu", &inode) == 1)
                view->inodes[view->departed++] = inode;
        } else if (tail > 0 && len > tail && strcmp(name + len - tail, own_tail) == 0 && strchr("._", name[len - tail - 1]) != NULL) {
            view->own = 1;
        }
    }
    fclose(maps);
}

/* Whether the server made this client's synchronisation file under a name we know: jack2's
 * ("jack_sem.<uid>_<server>_<client>", or without the uid for a promiscuous server; "sem."
 * before it on POSIX semaphores). */
static int own_file_exists(const char *tail) {
    char path[1024];
    const char *prefixes[] = {"/dev/shm/jack_sem.", "/dev/shm/sem.jack_sem."};
    for (int i = 0; i < 2; i++) {
        snprintf(path, sizeof path, "%s%d_%s", prefixes[i], (int)geteuid(), tail);
        if (access(path, F_OK) == 0)
            return 1;
        snprintf(path, sizeof path, "%s%s", prefixes[i], tail);
        if (access(path, F_OK) == 0)
            return 1;
    }
    return 0;
}

/* How many of the departed files in 'now' were not mapped 'before'. */
static int newly_departed(const synchro_view_t *now, const synchro_view_t *before) {
    int count = 0;
    for (int i = 0; i < now->departed; i++) {
        int seen = 0;
        for (int j = 0; j < before->departed && !seen; j++)
            seen = now->inodes[i] == before->inodes[j];
        count += !seen;
    }
    return count;
}

static const char STALE_OWN[] = "its own synchronisation was a departed client's";
static const char STALE_DEPARTED[] = "a departed client's synchronisation stayed mapped";
static atomic_ulong repairs;              /* clients opened again for a stale synchronisation */
static const char *_Atomic repair_reason; /* why, the last time (a static string) */

/* Why the client just opened must not be activated (see synchro_view), or NULL. 'before': what
 * was mapped before the first client of ours opened (NULL: not the first). GIL released. */
static const char *stale_synchro(jack_client_t *jack, const synchro_view_t *before) {
    const char *server = getenv("JACK_DEFAULT_SERVER"); /* what libjack opens when not told otherwise */
    const char *client = jack_get_client_name(jack);
    char tail[512];
    int at = snprintf(tail, sizeof tail, "%s_", server != NULL ? server : "default");
    snprintf(tail + at, sizeof tail - at, "%s", client);
    for (char *c = tail + at; *c != '\0'; c++)
        if (*c == '/' || *c == '\\')
            *c = '_'; /* as libjack names the file */
    synchro_view_t view;
    synchro_view(tail, &view);
    if (!view.any)
        return NULL; /* another implementation (PipeWire's, or a build we do not know) */
    if (!view.own && own_file_exists(tail))
        return STALE_OWN; /* (a file we cannot find is a naming we do not know, not a stale one) */
    if (before == NULL || newly_departed(&view, before) == 0)
        return NULL;
    /* a client that left just now is unmapped by our notification thread a moment later */
    for (long wait_ms = 10; wait_ms <= 40; wait_ms *= 2) {
        struct timespec pause = {0, wait_ms * 1000000L};
        nanosleep(&pause, NULL);
        synchro_view(tail, &view);
        if (newly_departed(&view, before) == 0)
            return NULL;
    }
    return STALE_DEPARTED;
}

static int Client_init(Client *self, PyObject *args, PyObject *kwds) {
    static char *kwlist[] = {"name", NULL};
    const char *name;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "s", kwlist, &name))
        return -1;
    if (self->jack != NULL) {
        PyErr_SetString(JackError, "a Client is opened once");
        return -1;
    }
    jack_status_t status = 0;
    jack_client_t *jack;
    int count = before_open();
    synchro_view_t before; /* the first client of ours: what other libraries' tables map now */
    if (count == 0)
        synchro_view("", &before);
    const char *stale = NULL;
    for (int attempt = 1;; attempt++) {
        atomic_store(&libjack_cleaned, 0);
        Py_BEGIN_ALLOW_THREADS
        jack = jack_client_open(name, JackNoStartServer, &status);
        if (jack != NULL)
            stale = stale_synchro(jack, count == 0 ? &before : NULL);
        Py_END_ALLOW_THREADS
        if (atomic_exchange(&libjack_cleaned, 0))
            forget_all();
        if (jack == NULL) {
            atomic_store(&reset_needed, 1); /* a refused open may have cleared libjack's flag */
            PyErr_Format(JackError, "JACK refused a client named %s (status 0x%x%s)", name, (unsigned)status,
                         (status & JackServerFailed) ? ": no JACK server running" : "");
            return -1;
        }
        if (stale == NULL)
            break;
        if (attempt == SYNCHRO_TRIES) {
            /* Never seen: another user of libjack in this process keeps its table. Ours is used
             * all the same (refusing it would leave the daemon with no port at all). */
            atomic_store(&repair_reason, stale == STALE_OWN ? "its own synchronisation stayed a departed client's (given up)"
                                                             : "a departed client's synchronisation stayed mapped (given up)");
            break;
        }
        atomic_store(&repair_reason, stale);
        atomic_fetch_add(&repairs, 1);
        Py_BEGIN_ALLOW_THREADS
        jack_client_close(jack); /* libjack empties its entry (all of them, with no client left) */
        if (count == 0)
            synchro_view("", &before); /* our table is empty now: what stays mapped is another's */
        struct timespec pause = {0, 20000000L * attempt};
        nanosleep(&pause, NULL);
        Py_END_ALLOW_THREADS
    }
    int failed;
    jack_set_process_callback(jack, process, self);
    jack_on_shutdown(jack, on_shutdown, self);
    Py_BEGIN_ALLOW_THREADS
    failed = jack_activate(jack);
    Py_END_ALLOW_THREADS
    if (failed) {
        Py_BEGIN_ALLOW_THREADS
        jack_client_close(jack);
        Py_END_ALLOW_THREADS
        PyErr_Format(JackError, "JACK would not activate client %s", name);
        return -1;
    }
    self->pid = getpid();
    self->jack = jack;
    registry_set(NULL, self);
    return 0;
}

static PyObject *Client_new(PyTypeObject *type, PyObject *args, PyObject *kwds) {
    Client *self = (Client *)type->tp_alloc(type, 0);
    if (self == NULL)
        return NULL;
    init_recursive(&self->api);
    init_recursive(&self->data);
    for (int i = 0; i < MAX_PORTS; i++)
        atomic_init(&self->slots[i].state, SLOT_FREE);
    atomic_init(&self->started, 0);
    atomic_init(&self->finished, 0);
    atomic_init(&self->dead, 0);
    return (PyObject *)self;
}

/* Close the client (api held, or no other user left), dead or alive: libjack frees a client only
 * at our close (see 'registry'), and after it no cycle of the client runs, so its rings go too.
 * A client opened by another process (we were forked) is left to that process, its locks and
 * rings untouched (a thread of the parent may have held them at the fork). */
static void close_jack(Client *self) {
    jack_client_t *jack = self->jack;
    if (jack == NULL)
        return;
    if (self->pid != getpid()) {
        self->jack = NULL;
        return;
    }
    registry_set(self, NULL);
    Py_BEGIN_ALLOW_THREADS
    jack_deactivate(jack); /* the process callback runs no more */
    jack_client_close(jack);
    Py_END_ALLOW_THREADS
    take(&self->data);
    self->jack = NULL;
    for (int i = 0; i < MAX_PORTS; i++) {
        slot_t *slot = &self->slots[i];
        atomic_store(&slot->state, SLOT_FREE);
        if (slot->ring != NULL) {
            jack_ringbuffer_free(slot->ring);
            slot->ring = NULL;
        }
    }
    pthread_mutex_unlock(&self->data);
}

/* Every open client of ours, each with a reference (GIL held); returns how many. */
static int snapshot(Client **out) {
    int count = 0;
    pthread_mutex_lock(&registry_lock);
    for (int i = 0; i < MAX_CLIENTS; i++)
        if (registry[i] != NULL) {
            out[count] = registry[i];
            Py_INCREF((PyObject *)out[count++]);
        }
    pthread_mutex_unlock(&registry_lock);
    return count;
}

/* Whether libjack still talks to the server for this client (api held): one round trip. */
static int answers(Client *self) {
    char *uuid;
    Py_BEGIN_ALLOW_THREADS
    uuid = jack_get_uuid_for_client_name(self->jack, jack_get_client_name(self->jack));
    Py_END_ALLOW_THREADS
    if (uuid == NULL)
        return 0;
    jack_free(uuid);
    return 1;
}

/* Close every client of ours, marked dead (see 'registry'). */
static void reset_all(Client **clients, int count) {
    for (int i = 0; i < count; i++) {
        take(&clients[i]->api);
        atomic_store(&clients[i]->dead, 1);
        close_jack(clients[i]);
        pthread_mutex_unlock(&clients[i]->api);
    }
}

/* Call before any jack_client_open of ours (see 'registry'); returns how many clients of ours are
 * open after it. python-rtmidi's wheels carry a libjack of their own, whose table is not ours. */
static int before_open(void) {
    Client *clients[MAX_CLIENTS];
    int count = snapshot(clients);
    const char *reason = NULL;
    int needed = atomic_load(&reset_needed);
    if (needed)
        reason = "a client of ours was shut down, or an open was refused";
    for (int i = 0; reason == NULL && i < count; i++) {
        take(&clients[i]->api);
        if (clients[i]->jack != NULL && clients[i]->pid == getpid()) {
            if (atomic_load(&clients[i]->dead))
                reason = "a client of ours was shut down";
            else if (!answers(clients[i]))
                reason = "the server did not answer a client of ours";
        }
        pthread_mutex_unlock(&clients[i]->api);
    }
    int reset = reason != NULL && count > 0;
    if (reset) {
        atomic_store(&reset_reason, reason);
        atomic_fetch_add(&resets, 1);
        reset_all(clients, count);
    }
    if (reason != NULL)
        atomic_store(&reset_needed, 0); /* after the closes: a late notice from one of them is moot */
    for (int i = 0; i < count; i++)
        Py_DECREF((PyObject *)clients[i]);
    return reset ? 0 : count;
}

/* libjack deleted every client of the process (on_jack_error): ours are marked dead and closed
 * without a call to libjack; their rings are kept, as a cycle may have been under way. */
static void forget_all(void) {
    Client *clients[MAX_CLIENTS];
    int count = snapshot(clients);
    for (int i = 0; i < count; i++) {
        Client *self = clients[i];
        take(&self->api);
        registry_set(self, NULL);
        atomic_store(&self->dead, 1);
        take(&self->data);
        self->jack = NULL;
        for (int j = 0; j < MAX_PORTS; j++)
            atomic_store(&self->slots[j].state, SLOT_LEAKED);
        pthread_mutex_unlock(&self->data);
        pthread_mutex_unlock(&self->api);
        Py_DECREF((PyObject *)self);
    }
}

static void Client_dealloc(Client *self) {
    close_jack(self);
    pthread_mutex_destroy(&self->data);
    pthread_mutex_destroy(&self->api);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static PyObject *Client_close(Client *self, PyObject *unused) {
    int ours = self->pid == getpid(); /* a parent's client (we were forked): its lock may be held */
    if (ours)
        take(&self->api);
    close_jack(self);
    if (ours)
        pthread_mutex_unlock(&self->api);
    Py_RETURN_NONE;
}

static PyObject *Client_open_port(Client *self, PyObject *args) {
    const char *name;
    int is_input;
    if (!PyArg_ParseTuple(args, "sp", &name, &is_input))
        return NULL;
    take(&self->api);
    PyObject *result = NULL;
    if (check_live(self) < 0)
        goto done;
    int index = -1;
    for (int i = 0; i < MAX_PORTS && index < 0; i++)
        if (atomic_load(&self->slots[i].state) == SLOT_FREE)
            index = i;
    if (index < 0) {
        PyErr_Format(JackError, "a client holds at most %d ports", MAX_PORTS);
        goto done;
    }
    slot_t *slot = &self->slots[index];
    jack_port_t *port;
    Py_BEGIN_ALLOW_THREADS
    port = jack_port_register(self->jack, name, JACK_DEFAULT_MIDI_TYPE, is_input ? JackPortIsInput : JackPortIsOutput, 0);
    Py_END_ALLOW_THREADS
    if (port == NULL) {
        PyErr_Format(JackError, "JACK refused a port named %s on client %s", name, jack_get_client_name(self->jack));
        goto done;
    }
    jack_ringbuffer_t *ring = jack_ringbuffer_create(RING_BYTES);
    if (ring == NULL) {
        Py_BEGIN_ALLOW_THREADS
        jack_port_unregister(self->jack, port);
        Py_END_ALLOW_THREADS
        PyErr_NoMemory();
        goto done;
    }
    jack_ringbuffer_mlock(ring); /* no page fault in the process thread (best effort) */
    take(&self->data);
    slot->port = port;
    slot->ring = ring;
    slot->is_input = is_input;
    atomic_store(&slot->dropped, 0);
    atomic_store(&slot->state, SLOT_ACTIVE); /* the process callback takes it from here */
    pthread_mutex_unlock(&self->data);
    result = PyLong_FromLong(index);
done:
    pthread_mutex_unlock(&self->api);
    return result;
}

static PyObject *Client_close_port(Client *self, PyObject *args) {
    int index;
    if (!PyArg_ParseTuple(args, "i", &index))
        return NULL;
    take(&self->api);
    if (self->jack == NULL || index < 0 || index >= MAX_PORTS || atomic_load(&self->slots[index].state) != SLOT_ACTIVE) {
        pthread_mutex_unlock(&self->api);
        PyErr_Format(PyExc_ValueError, "no open port in slot %d", index);
        return NULL;
    }
    slot_t *slot = &self->slots[index];
    if (!live(self)) { /* a dead server's or another process's client: nothing to ask, nothing freed */
        atomic_store(&slot->state, SLOT_LEAKED);
        pthread_mutex_unlock(&self->api);
        Py_RETURN_NONE;
    }
    int ok = 1;
    Py_BEGIN_ALLOW_THREADS
    /* What was written last (note-offs before a close) goes out first, for up to 0.1 s. */
    struct timespec pause = {0, 500000};
    for (int i = 0; !slot->is_input && !atomic_load(&self->dead) && i < 200 && jack_ringbuffer_read_space(slot->ring) > 0; i++)
        nanosleep(&pause, NULL);
    pthread_mutex_lock(&self->data);
    atomic_store(&slot->state, SLOT_DRAINING); /* no more reads or writes; outputs: cleared buffers */
    pthread_mutex_unlock(&self->data);
    if (!atomic_load(&self->dead))
        jack_port_disconnect(self->jack, slot->port);
    ok = wait_cycle(self) == 0;
    if (ok) {
        atomic_store(&slot->state, SLOT_CLOSING); /* the callback leaves it alone */
        ok = wait_cycle(self) == 0;
    }
    if (ok && !atomic_load(&self->dead))
        jack_port_unregister(self->jack, slot->port);
    Py_END_ALLOW_THREADS
    take(&self->data);
    if (ok && !atomic_load(&self->dead)) {
        jack_ringbuffer_free(slot->ring);
        slot->ring = NULL;
        slot->port = NULL;
        atomic_store(&slot->state, SLOT_FREE);
    } else {
        atomic_store(&slot->state, SLOT_LEAKED); /* a hung or dead cycle may still use it: never reused */
    }
    pthread_mutex_unlock(&self->data);
    pthread_mutex_unlock(&self->api);
    Py_RETURN_NONE;
}

static PyObject *Client_port_name(Client *self, PyObject *args) {
    int index;
    if (!PyArg_ParseTuple(args, "i", &index))
        return NULL;
    char name[512] = "";
    take(&self->api);
    int ok = live(self) && index >= 0 && index < MAX_PORTS && atomic_load(&self->slots[index].state) == SLOT_ACTIVE;
    if (ok)
        snprintf(name, sizeof name, "%s", jack_port_name(self->slots[index].port));
    pthread_mutex_unlock(&self->api);
    if (!ok) {
        PyErr_Format(PyExc_ValueError, "no open port in slot %d of a live client", index);
        return NULL;
    }
    return PyUnicode_FromString(name);
}

static PyObject *Client_read(Client *self, PyObject *args) {
    int index;
    if (!PyArg_ParseTuple(args, "i", &index))
        return NULL;
    /* Copy every whole message out under 'data', then make Python objects without it. */
    take(&self->data);
    const char *problem = slot_problem(self, index, 1);
    char *copy = NULL;
    size_t used = 0;
    if (problem == NULL) {
        jack_ringbuffer_t *ring = self->slots[index].ring;
        size_t space = jack_ringbuffer_read_space(ring);
        copy = space ? malloc(space) : NULL;
        header_t header;
        while (copy != NULL && jack_ringbuffer_peek(ring, (char *)&header, sizeof header) == sizeof header) {
            if (jack_ringbuffer_read_space(ring) < sizeof header + header.size || used + sizeof header + header.size > space)
                break; /* the callback is between the header and the bytes: next read */
            jack_ringbuffer_read(ring, copy + used, sizeof header + header.size);
            used += sizeof header + header.size;
        }
    }
    pthread_mutex_unlock(&self->data);
    if (problem != NULL) {
        PyErr_Format(PyExc_ValueError, "slot %d: %s", index, problem);
        return NULL;
    }
    /* jack_get_time() is not always CLOCK_MONOTONIC (jack2 reads CLOCK_MONOTONIC_RAW, which
     * runs apart from it by ppm): stamps move to time.perf_counter's clock by the offset now. */
    struct timespec mono;
    clock_gettime(CLOCK_MONOTONIC, &mono);
    double offset = (double)mono.tv_sec + mono.tv_nsec / 1e9 - jack_get_time() / 1e6;
    PyObject *list = PyList_New(0);
    for (size_t at = 0; list != NULL && at < used;) {
        header_t header;
        memcpy(&header, copy + at, sizeof header);
        at += sizeof header;
        PyObject *item = Py_BuildValue("(dy#)", header.stamp + offset, copy + at, (Py_ssize_t)header.size);
        at += header.size;
        if (item == NULL || PyList_Append(list, item) < 0)
            Py_CLEAR(list);
        Py_XDECREF(item);
    }
    free(copy);
    return list;
}

/* Copy n bytes to offset 'at' of the free space that 'parts' describes (it may wrap around). */
static void copy_in(jack_ringbuffer_data_t *parts, size_t at, const void *source, size_t n) {
    const char *from = source;
    for (int p = 0; p < 2 && n > 0; p++) {
        if (at >= parts[p].len) {
            at -= parts[p].len;
            continue;
        }
        size_t chunk = parts[p].len - at < n ? parts[p].len - at : n;
        memcpy(parts[p].buf + at, from, chunk);
        from += chunk;
        n -= chunk;
        at = 0;
    }
}

static PyObject *Client_write(Client *self, PyObject *args) {
    int index;
    Py_buffer data;
    if (!PyArg_ParseTuple(args, "iy*", &index, &data))
        return NULL;
    const char *problem = NULL;
    int taken = 0;
    if (data.len > 0 && data.len <= MAX_OUTPUT_MESSAGE) {
        take(&self->data);
        problem = slot_problem(self, index, 0);
        jack_ringbuffer_t *ring = problem == NULL ? self->slots[index].ring : NULL;
        header_t header = {(uint32_t)data.len, 0.0};
        if (ring != NULL && jack_ringbuffer_write_space(ring) >= sizeof header + (size_t)data.len) {
            /* Both into the ring's free space, then one advance: the callback sees the whole message or none. */
            jack_ringbuffer_data_t parts[2];
            jack_ringbuffer_get_write_vector(ring, parts);
            copy_in(parts, 0, &header, sizeof header);
            copy_in(parts, sizeof header, data.buf, (size_t)data.len);
            jack_ringbuffer_write_advance(ring, sizeof header + data.len);
            taken = 1;
        }
        pthread_mutex_unlock(&self->data);
    }
    PyBuffer_Release(&data);
    if (problem != NULL) {
        PyErr_Format(PyExc_ValueError, "slot %d: %s", index, problem);
        return NULL;
    }
    return PyBool_FromLong(taken);
}

static PyObject *Client_dropped(Client *self, PyObject *args) {
    int index;
    if (!PyArg_ParseTuple(args, "i", &index))
        return NULL;
    if (index < 0 || index >= MAX_PORTS) {
        PyErr_Format(PyExc_ValueError, "no slot %d", index);
        return NULL;
    }
    return PyLong_FromUnsignedLong(atomic_load(&self->slots[index].dropped));
}

static PyObject *Client_ports(Client *self, PyObject *args) {
    int outputs;
    if (!PyArg_ParseTuple(args, "p", &outputs))
        return NULL;
    take(&self->api);
    if (check_live(self) < 0) {
        pthread_mutex_unlock(&self->api);
        return NULL;
    }
    const char **names;
    Py_BEGIN_ALLOW_THREADS
    names = jack_get_ports(self->jack, NULL, JACK_DEFAULT_MIDI_TYPE, outputs ? JackPortIsOutput : JackPortIsInput);
    Py_END_ALLOW_THREADS
    pthread_mutex_unlock(&self->api);
    PyObject *list = PyList_New(0);
    for (int i = 0; list != NULL && names != NULL && names[i] != NULL; i++) {
        PyObject *name = PyUnicode_DecodeUTF8(names[i], strlen(names[i]), "replace");
        if (name == NULL || PyList_Append(list, name) < 0)
            Py_CLEAR(list);
        Py_XDECREF(name);
    }
    if (names != NULL)
        jack_free(names);
    return list;
}

static PyObject *Client_connect(Client *self, PyObject *args) {
    const char *source, *destination;
    if (!PyArg_ParseTuple(args, "ss", &source, &destination))
        return NULL;
    take(&self->api);
    if (check_live(self) < 0) {
        pthread_mutex_unlock(&self->api);
        return NULL;
    }
    int err;
    Py_BEGIN_ALLOW_THREADS
    err = jack_connect(self->jack, source, destination);
    Py_END_ALLOW_THREADS
    pthread_mutex_unlock(&self->api);
    if (err != 0 && err != EEXIST) {
        PyErr_Format(JackError, "JACK could not connect %s to %s (error %d)", source, destination, err);
        return NULL;
    }
    Py_RETURN_NONE;
}

static PyObject *Client_get_name(Client *self, void *closure) {
    char name[256] = "";
    take(&self->api);
    int ok = live(self);
    if (ok)
        snprintf(name, sizeof name, "%s", jack_get_client_name(self->jack));
    pthread_mutex_unlock(&self->api);
    if (!ok) {
        PyErr_SetString(JackError, "the JACK client is closed, dead or another process's");
        return NULL;
    }
    return PyUnicode_FromString(name);
}

static PyObject *Client_shut_down(Client *self, PyObject *unused) {
    on_shutdown(self); /* what the server's shutdown callback does (tests: a client the server dropped) */
    Py_RETURN_NONE;
}

static PyObject *Client_get_dead(Client *self, void *closure) {
    return PyBool_FromLong(atomic_load(&self->dead));
}

static PyObject *Client_get_closed(Client *self, void *closure) {
    return PyBool_FromLong(self->jack == NULL);
}

static PyObject *Client_get_cycles(Client *self, void *closure) {
    return PyLong_FromUnsignedLong(atomic_load(&self->finished));
}

static PyMethodDef Client_methods[] = {
    {"open_port", (PyCFunction)Client_open_port, METH_VARARGS,
     "open_port(name, is_input) -> slot: register a MIDI port on this client"},
    {"close_port", (PyCFunction)Client_close_port, METH_VARARGS,
     "close_port(slot): disconnect and unregister the port, once no process cycle uses it"},
    {"port_name", (PyCFunction)Client_port_name, METH_VARARGS, "port_name(slot) -> 'client:port'"},
    {"read", (PyCFunction)Client_read, METH_VARARGS,
     "read(slot) -> [(seconds, bytes)]: what an input port received since the last read"},
    {"write", (PyCFunction)Client_write, METH_VARARGS,
     "write(slot, data) -> bool: queue one message for the next cycle; False if the ring is full"},
    {"dropped", (PyCFunction)Client_dropped, METH_VARARGS, "dropped(slot) -> input events that did not fit"},
    {"ports", (PyCFunction)Client_ports, METH_VARARGS,
     "ports(outputs) -> names of the server's MIDI output (True) or input (False) ports"},
    {"connect", (PyCFunction)Client_connect, METH_VARARGS, "connect(source, destination)"},
    {"close", (PyCFunction)Client_close, METH_NOARGS, "close(): deactivate and close the client"},
    {"_shut_down", (PyCFunction)Client_shut_down, METH_NOARGS,
     "_shut_down(): for tests: mark the client dead as the server's shutdown callback does"},
    {NULL},
};

static PyGetSetDef Client_getset[] = {
    {"name", (getter)Client_get_name, NULL, "the name JACK gave this client", NULL},
    {"dead", (getter)Client_get_dead, NULL, "True once the server shut this client down", NULL},
    {"closed", (getter)Client_get_closed, NULL, "True after close()", NULL},
    {"cycles", (getter)Client_get_cycles, NULL, "process cycles run so far", NULL},
    {NULL},
};

static PyTypeObject ClientType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "live.midi_io._jackmidi.Client",
    .tp_doc = "Client(name): a JACK client with MIDI ports served by a C process callback",
    .tp_basicsize = sizeof(Client),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_new = Client_new,
    .tp_init = (initproc)Client_init,
    .tp_dealloc = (destructor)Client_dealloc,
    .tp_methods = Client_methods,
    .tp_getset = Client_getset,
};

static PyObject *wake_fd(PyObject *module, PyObject *unused) {
    return PyLong_FromLong(wake);
}

static PyObject *arrivals_(PyObject *module, PyObject *unused) {
    return PyLong_FromUnsignedLong(atomic_load(&arrivals));
}

static PyObject *wait_for_input(PyObject *module, PyObject *args) {
    int read_fd, write_fd;
    unsigned long seen;
    double timeout;
    if (!PyArg_ParseTuple(args, "iikd", &read_fd, &write_fd, &seen, &timeout))
        return NULL;
    int slot = -1;
    for (int i = 0; i < MAX_WAITERS && slot < 0; i++) {
        int expected = -1;
        if (atomic_compare_exchange_strong(&waiters[i], &expected, write_fd))
            slot = i;
    }
    /* registered first, then the counter read: input that came before the registration shows
     * in the counter, input after it writes to write_fd (both atomics are sequentially consistent).
     * With no slot free it sleeps all the same, unregistered: until the waker's drain sets the
     * Wake of its port (write_fd too) or the timeout. */
    if (slot < 0 || atomic_load(&arrivals) == seen) {
        struct pollfd fds = {.fd = read_fd, .events = POLLIN};
        int ms = timeout < 0 || timeout > 86400.0 ? -1 : (int)(timeout * 1000.0 + 0.999); /* negative: no limit */
        char bytes[256];
        Py_BEGIN_ALLOW_THREADS
        if (poll(&fds, 1, ms) > 0 && (fds.revents & POLLIN)) {
            ssize_t ignored = read(read_fd, bytes, sizeof bytes); /* what woke it */
            (void)ignored;
        }
        Py_END_ALLOW_THREADS
    }
    if (slot >= 0) {
        atomic_store(&waiters[slot], -1);
        Py_BEGIN_ALLOW_THREADS
        while (atomic_load(&signalling) != 0) /* a callback may still hold write_fd: a few us */
            sched_yield();
        Py_END_ALLOW_THREADS
    }
    return PyLong_FromUnsignedLong(atomic_load(&arrivals));
}

static PyObject *last_reset(PyObject *module, PyObject *unused) {
    const char *reason = atomic_load(&reset_reason);
    return Py_BuildValue("(ks)", atomic_load(&resets), reason == NULL ? "" : reason);
}

static PyObject *last_repair(PyObject *module, PyObject *unused) {
    const char *reason = atomic_load(&repair_reason);
    return Py_BuildValue("(ks)", atomic_load(&repairs), reason == NULL ? "" : reason);
}

static PyObject *reset_pending(PyObject *module, PyObject *unused) {
    return PyBool_FromLong(atomic_load(&reset_needed));
}

static PyObject *close_all(PyObject *module, PyObject *unused) {
    Client *clients[MAX_CLIENTS];
    int count = snapshot(clients);
    reset_all(clients, count);
    for (int i = 0; i < count; i++)
        Py_DECREF((PyObject *)clients[i]);
    return PyLong_FromLong(count);
}

static PyObject *after_fork(PyObject *module, PyObject *unused) {
    int fresh = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (fresh < 0)
        return PyErr_SetFromErrno(PyExc_OSError);
    close(wake); /* the parent's, shared with it: its wake-ups are not ours */
    wake = fresh;
    /* The parent's clients are not ours to probe or close (and another thread may have held the
     * registry's lock at the fork). */
    pthread_mutex_init(&registry_lock, NULL);
    memset(registry, 0, sizeof registry);
    atomic_store(&reset_needed, 0);
    for (int i = 0; i < MAX_WAITERS; i++)
        atomic_store(&waiters[i], -1); /* the parent's threads, not here */
    Py_RETURN_NONE;
}

static PyMethodDef module_methods[] = {
    {"wake_fd", wake_fd, METH_NOARGS,
     "wake_fd() -> the eventfd every client's process callback writes to after input arrived "
     "or its server shut down, when no thread waits in wait_for_input()"},
    {"arrivals", arrivals_, METH_NOARGS,
     "arrivals() -> n: how many times a process callback has signalled input so far (input "
     "arrived, or a server shut down); read without a system call"},
    {"wait_for_input", wait_for_input, METH_VARARGS,
     "wait_for_input(read_fd, write_fd, seen, timeout) -> arrivals(): sleep (the GIL released) until "
     "read_fd is readable (then read what waits there, a nonblocking descriptor) or timeout seconds "
     "pass (negative: no limit), unless arrivals() has moved past seen; meanwhile "
     "input writes a byte to write_fd (and not to wake_fd()): the caller hands it over (drain). "
     "At most 8 threads wait so at once; more sleep until another drain sets their port's wake-up"},
    {"last_reset", last_reset, METH_NOARGS,
     "last_reset() -> (n, why): how many times every client of ours was closed before an open, and why the last time"},
    {"last_repair", last_repair, METH_NOARGS,
     "last_repair() -> (n, why): how many times a client was closed and opened again at once because libjack "
     "gave it a departed client's synchronisation, and why the last time"},
    {"reset_pending", reset_pending, METH_NOARGS,
     "reset_pending() -> bool: libjack may have stopped serving our clients (one was shut down, or an open "
     "was refused): none should be used again before close_all() or the next open"},
    {"close_all", close_all, METH_NOARGS,
     "close_all() -> n: close every client of ours now, marked dead (their server restarted)"},
    {"after_fork", after_fork, METH_NOARGS,
     "after_fork(): in a forked child, an eventfd of its own (the parent's clients stay the parent's)"},
    {NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "_jackmidi", "MIDI ports on JACK clients served by a C process callback.", -1,
    module_methods,
};

PyMODINIT_FUNC PyInit__jackmidi(void) {
    if (PyType_Ready(&ClientType) < 0)
        return NULL;
    wake = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (wake < 0)
        return PyErr_SetFromErrno(PyExc_OSError);
    jack_set_error_function(on_jack_error);
    PyObject *m = PyModule_Create(&module);
    if (m == NULL)
        return NULL;
    JackError = PyErr_NewException("live.midi_io._jackmidi.JackError", PyExc_RuntimeError, NULL);
    if (PyModule_AddIntConstant(m, "MAX_PORTS", MAX_PORTS) < 0 ||
        PyModule_AddIntConstant(m, "MAX_OUTPUT_MESSAGE", MAX_OUTPUT_MESSAGE) < 0 ||
        PyModule_AddObjectRef(m, "JackError", JackError) < 0 ||
        PyModule_AddObjectRef(m, "Client", (PyObject *)&ClientType) < 0) {
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
