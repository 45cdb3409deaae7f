package org.example.hello.lib;

/** Greeter makes greetings. */
public final class Greeter {
    private Greeter() {}

    /** Returns a greeting for name. */
    public static String greet(String name) {
        if (name == null || name.isBlank()) {
            return "hello, world";
        }
        return "hello, " + name.strip();
    }
}
