#include <stdio.h>

int main(void) {
	printf("hello from pyrsia-build, built reproducibly\n");
	return 0;
}
