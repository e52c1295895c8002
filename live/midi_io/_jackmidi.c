/* _jackmidi: MIDI ports on one JACK client, with no Python in JACK's process thread.
 *
 * python-rtmidi's JACK API opens one JACK client per port and offers its input only as a queue
 * to poll (or a Python callback in JACK's real-time thread, which the house forbids). This
 * module gives one client any number of MIDI ports and a process callback written in C:
 *
 *   input  port -> the process callback copies each event, stamped with jack_get_time() (moved
 *                  to time.perf_counter's clock when read), into the port's ring buffer and
 *                  then writes 1 to one eventfd that every client of the process shares
 *                  (wake_fd()); a Python thread sleeps on that descriptor and reads the rings.
 *   output port -> Python writes messages into the port's ring buffer; the next process cycle
 *                  clears the port's buffer and copies them in, at frame 0, in order.
 *
 * A port's slot is handed to the process callback by an atomic store of its state, and taken
 * back the same way: Python stores the new state, then waits until every cycle that may have
 * started before the store has finished (the 'started' and 'finished' counters). The callback
 * never locks, never allocates and never calls Python.
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
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#define MAX_PORTS 32
#define RING_BYTES (1 << 16) /* per port; a message longer than a ring's space is dropped, counted */
#define WAIT_CYCLE_SECONDS 1.0 /* how long a closing port waits for a running cycle to end */

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
    atomic_ulong dropped;       /* input: events that did not fit the ring */
} slot_t;

typedef struct {
    PyObject_HEAD
    jack_client_t *jack;
    pthread_mutex_t lock;       /* Python's side only: opening, closing, reading, writing slots */
    slot_t slots[MAX_PORTS];
    atomic_ulong started;       /* process cycles begun */
    atomic_ulong finished;      /* process cycles ended */
    atomic_int dead;            /* the server shut this client down */
} Client;

static int wake = -1; /* the process's eventfd */

static void signal_wake(void) {
    uint64_t one = 1;
    ssize_t ignored = write(wake, &one, sizeof one); /* EAGAIN: already signalled enough */
    (void)ignored;
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
    while (jack_ringbuffer_peek(slot->ring, (char *)&header, sizeof header) == sizeof header) {
        if (jack_ringbuffer_read_space(slot->ring) < sizeof header + header.size)
            break; /* the writer is between the header and the bytes */
        jack_midi_data_t *out = jack_midi_event_reserve(buffer, 0, header.size);
        if (out == NULL)
            break; /* this cycle's buffer is full: the rest goes next cycle */
        jack_ringbuffer_read_advance(slot->ring, sizeof header);
        jack_ringbuffer_read(slot->ring, (char *)out, header.size);
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
    signal_wake();
}

/* -- Python's side ---------------------------------------------------------------------------- */

static PyObject *JackError; /* _jackmidi.JackError(RuntimeError) */

static void lock_client(Client *self) {
    if (pthread_mutex_trylock(&self->lock) == 0)
        return;
    Py_BEGIN_ALLOW_THREADS
    pthread_mutex_lock(&self->lock);
    Py_END_ALLOW_THREADS
}

static int check_open(Client *self) {
    if (self->jack == NULL) {
        PyErr_SetString(JackError, "the JACK client is closed");
        return -1;
    }
    return 0;
}

static int check_slot(Client *self, int index, int want_input) {
    if (check_open(self) < 0)
        return -1;
    if (index < 0 || index >= MAX_PORTS || atomic_load(&self->slots[index].state) != SLOT_ACTIVE) {
        PyErr_Format(PyExc_ValueError, "no open port in slot %d", index);
        return -1;
    }
    if (want_input >= 0 && self->slots[index].is_input != want_input) {
        PyErr_Format(PyExc_ValueError, "slot %d is an %s port", index, want_input ? "output" : "input");
        return -1;
    }
    return 0;
}

/* Wait (GIL released, lock held) until every cycle that began before now has ended.
 * Returns 0 when it did, -1 when a cycle hung longer than WAIT_CYCLE_SECONDS. */
static int wait_cycle(Client *self) {
    unsigned long target = atomic_load(&self->started);
    struct timespec pause = {0, 200000};
    for (double waited = 0; atomic_load(&self->finished) < target; waited += 0.0002) {
        if (atomic_load(&self->dead) || waited > WAIT_CYCLE_SECONDS)
            return atomic_load(&self->dead) ? 0 : -1;
        nanosleep(&pause, NULL);
    }
    return 0;
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
    Py_BEGIN_ALLOW_THREADS
    jack = jack_client_open(name, JackNoStartServer, &status);
    Py_END_ALLOW_THREADS
    if (jack == NULL) {
        PyErr_Format(JackError, "JACK refused a client named %s (status 0x%x%s)", name, (unsigned)status,
                     (status & JackServerFailed) ? ": no JACK server running" : "");
        return -1;
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
    self->jack = jack;
    return 0;
}

static PyObject *Client_new(PyTypeObject *type, PyObject *args, PyObject *kwds) {
    Client *self = (Client *)type->tp_alloc(type, 0);
    if (self == NULL)
        return NULL;
    pthread_mutex_init(&self->lock, NULL);
    for (int i = 0; i < MAX_PORTS; i++)
        atomic_init(&self->slots[i].state, SLOT_FREE);
    atomic_init(&self->started, 0);
    atomic_init(&self->finished, 0);
    atomic_init(&self->dead, 0);
    return (PyObject *)self;
}

static void close_jack(Client *self) {
    jack_client_t *jack = self->jack;
    if (jack == NULL)
        return;
    self->jack = NULL;
    /* A client whose server died is not closed: libjack frees such clients itself when the
     * process next opens a client ("Jack server was closed but clients are still allocated,
     * cleanup..."), and closing one after that would free it twice. */
    if (!atomic_load(&self->dead)) {
        Py_BEGIN_ALLOW_THREADS
        jack_deactivate(jack); /* the process callback runs no more */
        jack_client_close(jack);
        Py_END_ALLOW_THREADS
    }
    for (int i = 0; i < MAX_PORTS; i++) {
        slot_t *slot = &self->slots[i];
        if (slot->ring != NULL) { /* the process thread is gone with the client */
            jack_ringbuffer_free(slot->ring);
            slot->ring = NULL;
        }
        atomic_store(&slot->state, SLOT_FREE);
    }
}

static void Client_dealloc(Client *self) {
    close_jack(self);
    pthread_mutex_destroy(&self->lock);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static PyObject *Client_close(Client *self, PyObject *unused) {
    lock_client(self);
    close_jack(self);
    pthread_mutex_unlock(&self->lock);
    Py_RETURN_NONE;
}

static PyObject *Client_open_port(Client *self, PyObject *args) {
    const char *name;
    int is_input;
    if (!PyArg_ParseTuple(args, "sp", &name, &is_input))
        return NULL;
    lock_client(self);
    PyObject *result = NULL;
    if (check_open(self) < 0)
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
    slot->ring = jack_ringbuffer_create(RING_BYTES);
    if (slot->ring == NULL) {
        Py_BEGIN_ALLOW_THREADS
        jack_port_unregister(self->jack, port);
        Py_END_ALLOW_THREADS
        PyErr_NoMemory();
        goto done;
    }
    slot->port = port;
    slot->is_input = is_input;
    atomic_store(&slot->dropped, 0);
    atomic_store(&slot->state, SLOT_ACTIVE); /* the process callback takes it from here */
    result = PyLong_FromLong(index);
done:
    pthread_mutex_unlock(&self->lock);
    return result;
}

static PyObject *Client_close_port(Client *self, PyObject *args) {
    int index;
    if (!PyArg_ParseTuple(args, "i", &index))
        return NULL;
    lock_client(self);
    if (check_slot(self, index, -1) < 0) {
        pthread_mutex_unlock(&self->lock);
        return NULL;
    }
    slot_t *slot = &self->slots[index];
    int ok = 1;
    Py_BEGIN_ALLOW_THREADS
    /* What was written last (note-offs before a close) goes out first, for up to 0.1 s. */
    struct timespec pause = {0, 500000};
    for (int i = 0; !slot->is_input && !atomic_load(&self->dead) && i < 200 && jack_ringbuffer_read_space(slot->ring) > 0; i++)
        nanosleep(&pause, NULL);
    atomic_store(&slot->state, SLOT_DRAINING); /* outputs: cleared buffers from now on */
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
    if (ok) {
        jack_ringbuffer_free(slot->ring);
        slot->ring = NULL;
        slot->port = NULL;
        atomic_store(&slot->state, SLOT_FREE);
    } else {
        atomic_store(&slot->state, SLOT_LEAKED); /* a hung cycle may still use it: never reused */
    }
    pthread_mutex_unlock(&self->lock);
    Py_RETURN_NONE;
}

static PyObject *Client_port_name(Client *self, PyObject *args) {
    int index;
    if (!PyArg_ParseTuple(args, "i", &index))
        return NULL;
    lock_client(self);
    PyObject *result = check_slot(self, index, -1) < 0 ? NULL : PyUnicode_FromString(jack_port_name(self->slots[index].port));
    pthread_mutex_unlock(&self->lock);
    return result;
}

static PyObject *Client_read(Client *self, PyObject *args) {
    int index;
    if (!PyArg_ParseTuple(args, "i", &index))
        return NULL;
    lock_client(self);
    PyObject *list = NULL;
    if (check_slot(self, index, 1) < 0)
        goto done;
    list = PyList_New(0);
    /* jack_get_time() is not always CLOCK_MONOTONIC (jack2 reads CLOCK_MONOTONIC_RAW, which
     * runs apart from it by ppm): stamps move to time.perf_counter's clock by the offset now. */
    struct timespec mono;
    clock_gettime(CLOCK_MONOTONIC, &mono);
    double offset = (double)mono.tv_sec + mono.tv_nsec / 1e9 - jack_get_time() / 1e6;
    jack_ringbuffer_t *ring = self->slots[index].ring;
    header_t header;
    while (list != NULL && jack_ringbuffer_peek(ring, (char *)&header, sizeof header) == sizeof header) {
        if (jack_ringbuffer_read_space(ring) < sizeof header + header.size)
            break; /* the callback is between the header and the bytes: next read */
        jack_ringbuffer_read_advance(ring, sizeof header);
        PyObject *data = PyBytes_FromStringAndSize(NULL, header.size);
        if (data == NULL) {
            Py_CLEAR(list);
            break;
        }
        jack_ringbuffer_read(ring, PyBytes_AS_STRING(data), header.size);
        PyObject *item = Py_BuildValue("(dN)", header.stamp + offset, data);
        if (item == NULL || PyList_Append(list, item) < 0)
            Py_CLEAR(list);
        Py_XDECREF(item);
    }
done:
    pthread_mutex_unlock(&self->lock);
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
    lock_client(self);
    PyObject *result = NULL;
    if (check_slot(self, index, 0) < 0)
        goto done;
    jack_ringbuffer_t *ring = self->slots[index].ring;
    header_t header = {(uint32_t)data.len, 0.0};
    if (data.len == 0 || jack_ringbuffer_write_space(ring) < sizeof header + (size_t)data.len) {
        result = Py_NewRef(Py_False);
        goto done;
    }
    /* Both into the ring's free space, then one advance: the callback sees the whole message or none. */
    jack_ringbuffer_data_t parts[2];
    jack_ringbuffer_get_write_vector(ring, parts);
    copy_in(parts, 0, &header, sizeof header);
    copy_in(parts, sizeof header, data.buf, (size_t)data.len);
    jack_ringbuffer_write_advance(ring, sizeof header + data.len);
    result = Py_NewRef(Py_True);
done:
    pthread_mutex_unlock(&self->lock);
    PyBuffer_Release(&data);
    return result;
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
    lock_client(self);
    if (check_open(self) < 0) {
        pthread_mutex_unlock(&self->lock);
        return NULL;
    }
    const char **names;
    Py_BEGIN_ALLOW_THREADS
    names = jack_get_ports(self->jack, NULL, JACK_DEFAULT_MIDI_TYPE, outputs ? JackPortIsOutput : JackPortIsInput);
    Py_END_ALLOW_THREADS
    pthread_mutex_unlock(&self->lock);
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
    lock_client(self);
    if (check_open(self) < 0) {
        pthread_mutex_unlock(&self->lock);
        return NULL;
    }
    int err;
    Py_BEGIN_ALLOW_THREADS
    err = jack_connect(self->jack, source, destination);
    Py_END_ALLOW_THREADS
    pthread_mutex_unlock(&self->lock);
    if (err != 0 && err != EEXIST) {
        PyErr_Format(JackError, "JACK could not connect %s to %s (error %d)", source, destination, err);
        return NULL;
    }
    Py_RETURN_NONE;
}

static PyObject *Client_get_name(Client *self, void *closure) {
    lock_client(self);
    PyObject *name = check_open(self) < 0 ? NULL : PyUnicode_FromString(jack_get_client_name(self->jack));
    pthread_mutex_unlock(&self->lock);
    return name;
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

static PyMethodDef module_methods[] = {
    {"wake_fd", wake_fd, METH_NOARGS,
     "wake_fd() -> the eventfd every client's process callback writes to after input arrived "
     "or its server shut down"},
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
    PyObject *m = PyModule_Create(&module);
    if (m == NULL)
        return NULL;
    JackError = PyErr_NewException("live.midi_io._jackmidi.JackError", PyExc_RuntimeError, NULL);
    if (PyModule_AddIntConstant(m, "MAX_PORTS", MAX_PORTS) < 0 || PyModule_AddObjectRef(m, "JackError", JackError) < 0 ||
        PyModule_AddObjectRef(m, "Client", (PyObject *)&ClientType) < 0) {
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
