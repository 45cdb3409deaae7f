package org.example.hello.lib;

import static org.junit.Assert.assertEquals;

import org.junit.Test;

public class GreeterTest {
    @Test
    public void greetsByName() {
        assertEquals("hello, pyrsia", Greeter.greet(" pyrsia "));
    }

    @Test
    public void greetsTheWorldWithoutAName() {
        assertEquals("hello, world", Greeter.greet(""));
    }
}
