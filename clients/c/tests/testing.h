/* A small test harness: CHECK records a failure and goes on; RUN runs one named test. */
#ifndef ICBD_TESTING_H
#define ICBD_TESTING_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int testing_failures;
static int testing_checks;
static const char *testing_current = "";

#define CHECK(condition, ...)                                                                          \
    do {                                                                                               \
        testing_checks++;                                                                              \
        if (!(condition)) {                                                                            \
            testing_failures++;                                                                        \
            fprintf(stderr, "FAIL %s (%s:%d): %s: ", testing_current, __FILE__, __LINE__, #condition); \
            fprintf(stderr, __VA_ARGS__);                                                              \
            fputc('\n', stderr);                                                                       \
        }                                                                                              \
    } while (0)

/** CHECK that also leaves the test function. */
#define REQUIRE(condition, ...)                         \
    do {                                                \
        int testing_before = testing_failures;          \
        CHECK(condition, __VA_ARGS__);                  \
        if (testing_failures != testing_before) return; \
    } while (0)

#define RUN(test)                                                                                      \
    do {                                                                                               \
        testing_current = #test;                                                                       \
        int testing_before = testing_failures;                                                         \
        fprintf(stderr, "test %s ...\n", #test);                                                       \
        test();                                                                                        \
        fprintf(stderr, "test %s: %s\n", #test, testing_failures == testing_before ? "ok" : "FAILED"); \
    } while (0)

static inline int testing_summary(const char *suite) {
    fprintf(stderr, "%s: %d checks, %d failed\n", suite, testing_checks, testing_failures);
    return testing_failures ? 1 : 0;
}

#endif
