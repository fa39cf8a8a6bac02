import { InvalidParametersError } from '@libp2p/interface'
import {
  BUCKET_SIZE, MAX_MESSAGE_SIZE, MAX_NODES_MESSAGE_SIZE, PROTOCOL, REQUEST_TIMEOUT
} from '../constants.js'

/** The logger name of the client and the server. */
export const PROTOCOL_LOG_NAME = 'libp2p:kad-discovery:protocol'

/** The settings both ends of the protocol share; the defaults are DESIGN.md §5's. */
export interface ProtocolSettings {
  /** The protocol id. */
  protocol: string
  /** Milliseconds one request may take, end to end. */
  requestTimeout: number
  /** The most peers in a NODES answer (k). */
  bucketSize: number
  /** The largest PING, PONG or FIND_NODE frame, in bytes. */
  maxMessageSize: number
  /** The largest NODES frame, in bytes. */
  maxNodesMessageSize: number
}

/** The shared settings from an init object, defaults filled in and checked. */
export function protocolSettings (init: Partial<ProtocolSettings>): ProtocolSettings {
  return {
    protocol: init.protocol ?? PROTOCOL,
    requestTimeout: positive('requestTimeout', init.requestTimeout ?? REQUEST_TIMEOUT),
    bucketSize: positive('bucketSize', init.bucketSize ?? BUCKET_SIZE),
    maxMessageSize: positive('maxMessageSize', init.maxMessageSize ?? MAX_MESSAGE_SIZE),
    maxNodesMessageSize: positive('maxNodesMessageSize', init.maxNodesMessageSize ?? MAX_NODES_MESSAGE_SIZE)
  }
}

/** `value` when it is a positive finite number; else `InvalidParametersError` naming the setting. */
export function positive (name: string, value: number): number {
  if (!Number.isFinite(value) || value <= 0) {
    throw new InvalidParametersError(`${name} must be a positive number, got ${value}`)
  }
  return value
}
