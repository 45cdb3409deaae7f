package org.example.lib;

import static org.junit.Assert.assertEquals;

import org.junit.Test;

public class GreeterTest {
    @Test
    public void greets() {
        assertEquals("Hello, pyrsia!", Greeter.greet("pyrsia"));
    }
}
