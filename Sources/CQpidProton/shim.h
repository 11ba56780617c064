// Hubcast: the Qpid Proton C headers the AMQP module uses. Only `Sources/AMQP` imports this module.
#ifndef HUBCAST_CQPIDPROTON_SHIM_H
#define HUBCAST_CQPIDPROTON_SHIM_H

#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/prctl.h>

#include <proton/codec.h>
#include <proton/condition.h>
#include <proton/connection.h>
#include <proton/connection_driver.h>
#include <proton/delivery.h>
#include <proton/disposition.h>
#include <proton/event.h>
#include <proton/link.h>
#include <proton/logger.h>
#include <proton/sasl.h>
#include <proton/sasl_plugin.h>
#include <proton/session.h>
#include <proton/ssl.h>
#include <proton/terminus.h>
#include <proton/transport.h>
#include <proton/types.h>

/// Names the calling thread (seen in `top -H`, `perf` and debuggers); at most 15 characters.
static inline void hubcast_set_thread_name(const char *name) { prctl(PR_SET_NAME, name, 0, 0, 0); }

#endif
