package org.example.app;

import org.example.lib.Greeter;

public final class Main {
    public static void main(String[] args) {
        System.out.println(Greeter.greet("world"));
    }
}
