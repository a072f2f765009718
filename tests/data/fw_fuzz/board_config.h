/* Host build of the firmware app for fuzzing: no board. */
#ifndef EQ_BOARD_CONFIG_H
#define EQ_BOARD_CONFIG_H
#define EQ_BOARD_NAME "host-fuzz"
#define EQ_CLOCK_HZ 1000000u
#endif
