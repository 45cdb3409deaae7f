package org.example.lib;

public final class Greeter {
    public static String greet(String name) {
        return "Hello, " + name + "!";
    }
}
