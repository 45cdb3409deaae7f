#include <stdio.h>

int main(void) {
	puts("hello from a reproducible build");
	return 0;
}
